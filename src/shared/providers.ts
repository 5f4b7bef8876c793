import { z } from 'zod';

/** onnxruntime execution providers the engine runs on; a request may also say `auto`: the best one that loads here. */
export const EXECUTION_PROVIDERS = ['cpu', 'cuda', 'webgpu', 'dml', 'coreml'] as const;
export const ExecutionProvider = z.enum(EXECUTION_PROVIDERS);
export type ExecutionProvider = z.infer<typeof ExecutionProvider>;

export const ProviderRequest = z.enum(['auto', ...EXECUTION_PROVIDERS]);
export type ProviderRequest = z.infer<typeof ProviderRequest>;
export const PROVIDER_REQUESTS: readonly ProviderRequest[] = ProviderRequest.options;
