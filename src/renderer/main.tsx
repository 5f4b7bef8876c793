import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { createClient } from './client/index.js';
import { featureSlots } from './features/index.js';
import { App } from './shell/App.js';
import { ClientProvider } from './shell/client-context.js';
import { applyTheme, storedTheme } from './shell/theme.js';
import './styles.css';

applyTheme(storedTheme()); // before the first paint, so a dark theme never flashes light

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <ClientProvider client={createClient()}>
      <App slots={featureSlots} />
    </ClientProvider>
  </StrictMode>,
);
