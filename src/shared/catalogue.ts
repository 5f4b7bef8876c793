import { z } from 'zod';
import {
  CONTEXT_TOKENS,
  DtypeFootprint,
  footprintsByParameters,
  kvCacheBytes,
  recommendedDtype,
  RUNTIME_BYTES,
  WeightDtype,
} from './dtypes.js';

/**
 * The model catalogue: a short, curated list of Hugging Face checkpoints this app imports and runs, as LM
 * Studio and Jan offer theirs. Sizes on disk and memory are worked out from the parameter count before
 * anything is downloaded; the download size comes from the hub's own listing when it can be reached.
 */
export const CatalogueEntry = z.object({
  id: z.string(),
  name: z.string(),
  repoId: z.string(),
  /** The files to fetch where the repo holds several models (a GGUF repo's quantizations); absent: every checkpoint file. */
  files: z.array(z.string()).optional(),
  format: z.enum(['safetensors', 'gguf']),
  parameters: z.number().positive(),
  /** The decoder's layers and key/value width (heads x head size): the KV cache it needs. */
  layers: z.number().int().positive(),
  kvWidth: z.number().int().positive(),
  /** LLaVA-NeXT's and Qwen2.5-VL's many-view images take longer contexts. */
  longContext: z.boolean(),
  licence: z.string(),
  summary: z.string(),
});
export type CatalogueEntry = z.infer<typeof CatalogueEntry>;

export const CATALOGUE: CatalogueEntry[] = [
  {
    id: 'llava-1.5-7b',
    name: 'LLaVA-1.5 7B',
    repoId: 'llava-hf/llava-1.5-7b-hf',
    format: 'safetensors',
    parameters: 7.06e9,
    layers: 32,
    kvWidth: 4096,
    longContext: false,
    licence: 'Llama 2 Community License',
    summary: 'The model of the TransPrune paper: CLIP ViT-L/336 and Vicuna-7B, 576 visual tokens.',
  },
  {
    id: 'llava-1.5-13b',
    name: 'LLaVA-1.5 13B',
    repoId: 'llava-hf/llava-1.5-13b-hf',
    format: 'safetensors',
    parameters: 13.35e9,
    layers: 40,
    kvWidth: 5120,
    longContext: false,
    licence: 'Llama 2 Community License',
    summary: 'The larger LLaVA-1.5: Vicuna-13B, the same 576 visual tokens.',
  },
  {
    id: 'llava-next-mistral-7b',
    name: 'LLaVA-NeXT Mistral 7B',
    repoId: 'llava-hf/llava-v1.6-mistral-7b-hf',
    format: 'safetensors',
    parameters: 7.57e9,
    layers: 32,
    kvWidth: 1024,
    longContext: true,
    licence: 'Apache-2.0',
    summary: 'LLaVA-1.6 on Mistral-7B: high-resolution views, up to 2,880 visual tokens.',
  },
  {
    id: 'llava-next-vicuna-7b',
    name: 'LLaVA-NeXT Vicuna 7B',
    repoId: 'llava-hf/llava-v1.6-vicuna-7b-hf',
    format: 'safetensors',
    parameters: 7.06e9,
    layers: 32,
    kvWidth: 4096,
    longContext: true,
    licence: 'Llama 2 Community License',
    summary: 'LLaVA-1.6 on Vicuna-7B: high-resolution views, up to 2,880 visual tokens.',
  },
  {
    id: 'qwen2.5-vl-3b',
    name: 'Qwen2.5-VL 3B Instruct',
    repoId: 'Qwen/Qwen2.5-VL-3B-Instruct',
    format: 'safetensors',
    parameters: 3.75e9,
    layers: 36,
    kvWidth: 256,
    longContext: true,
    licence: 'Qwen Research License',
    summary: 'Qwen2.5-VL: native-resolution images (merged 2x2 patches), M-RoPE.',
  },
  {
    id: 'qwen2.5-vl-7b',
    name: 'Qwen2.5-VL 7B Instruct',
    repoId: 'Qwen/Qwen2.5-VL-7B-Instruct',
    format: 'safetensors',
    parameters: 8.29e9,
    layers: 28,
    kvWidth: 512,
    longContext: true,
    licence: 'Apache-2.0',
    summary: 'The larger Qwen2.5-VL: native-resolution images, M-RoPE.',
  },
  {
    id: 'llava-1.5-7b-gguf',
    name: 'LLaVA-1.5 7B (GGUF Q4_K)',
    repoId: 'mys/ggml_llava-v1.5-7b',
    files: ['ggml-model-q4_k.gguf', 'mmproj-model-f16.gguf'],
    format: 'gguf',
    parameters: 7.06e9,
    layers: 32,
    kvWidth: 4096,
    longContext: false,
    licence: 'Llama 2 Community License',
    summary: "llama.cpp's LLaVA-1.5 pair: a 4-bit language GGUF and its f16 mmproj, the smallest download.",
  },
];

/** A catalogue entry as this machine sees it: its download (from the hub's listing, else estimated) and footprints. */
export const CatalogueItem = CatalogueEntry.extend({
  download: z.object({ bytes: z.number().nonnegative(), files: z.number().int().nonnegative(), exact: z.boolean() }),
  footprints: z.array(DtypeFootprint),
  recommended: WeightDtype,
  /** The recommended precision's memory fits in half this machine's (the rest is the system's and the app's). */
  fits: z.boolean(),
});
export type CatalogueItem = z.infer<typeof CatalogueItem>;

/** Bytes per parameter of a download when the hub cannot be asked: bf16 safetensors, or Q4_K's 4.5 bits plus an f16 mmproj. */
const DOWNLOAD_BYTES_PER_PARAMETER = { safetensors: 2, gguf: 0.65 };

/** What an entry takes on this machine; `listed` is the hub's listing of the files it would fetch, when it answered. */
export function catalogueItem(entry: CatalogueEntry, machineMemoryBytes: number, listed?: { bytes: number; files: number }): CatalogueItem {
  const context = entry.longContext ? CONTEXT_TOKENS.anyres : CONTEXT_TOKENS.single;
  const footprints = footprintsByParameters(entry.parameters, kvCacheBytes(entry.layers, entry.kvWidth, context) + RUNTIME_BYTES);
  const recommended = recommendedDtype(footprints, entry.parameters, machineMemoryBytes);
  const memory = footprints.find((f) => f.dtype === recommended)!.memoryBytes;
  const download = listed
    ? { ...listed, exact: true }
    : { bytes: entry.parameters * DOWNLOAD_BYTES_PER_PARAMETER[entry.format], files: entry.files?.length ?? 0, exact: false };
  return { ...entry, download, footprints, recommended, fits: memory <= machineMemoryBytes / 2 };
}
