import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from './client/index.js';
import { featureSlots } from './features/index.js';
import { App } from './shell/App.js';
import { ClientProvider } from './shell/client-context.js';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ClientProvider client={createClient()}>
      <App slots={featureSlots} />
    </ClientProvider>
  </StrictMode>,
);
