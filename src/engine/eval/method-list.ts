/**
 * Splits a comma-separated list of method strings, keeping the commas between one method's options:
 * "fastv:k=2,r=0.5,ttv" -> ["fastv:k=2,r=0.5", "ttv"] (an option is a `key=value` part).
 */
export function splitMethodList(text: string): string[] {
  const methods: string[] = [];
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    if (/^[\w-]+=/.test(part) && methods.length > 0) methods[methods.length - 1] += `,${part}`;
    else methods.push(part);
  }
  return methods;
}
