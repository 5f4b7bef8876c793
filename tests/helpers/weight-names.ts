// LLaVA weight names in the two layouts transformers has written. The helpers speak the legacy
// llava-hf names (transformers < 4.52); checkpoints saved by transformers >= 4.52 use the new ones.

/** Maps a legacy llava-hf weight name to its transformers >= 4.52 name. */
export function toNewLayoutName(legacy: string): string {
  if (legacy === 'language_model.lm_head.weight') return 'lm_head.weight';
  if (legacy.startsWith('language_model.model.')) return `model.language_model.${legacy.slice('language_model.model.'.length)}`;
  return `model.${legacy}`; // vision_tower.* and multi_modal_projector.*
}

/** True when a checkpoint's tensor names are in the new layout. */
export function isNewLayout(names: Iterable<string>): boolean {
  for (const name of names) if (name.startsWith('model.language_model.') || name.startsWith('model.vision_tower.')) return true;
  return false;
}
