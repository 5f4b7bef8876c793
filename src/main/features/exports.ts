import { formatFlopsShare } from '../../shared/compute.js';
import { currentVersion, type Conversation } from '../../shared/conversation.js';

/** A conversation as Markdown: title, then each turn with the shown answer version and its numbers. */
export function conversationToMarkdown(conversation: Conversation): string {
  const lines = [`# ${conversation.title}`, ''];
  for (const message of conversation.messages) {
    if (message.role === 'user') {
      lines.push('**You:**', '');
      for (const id of message.images) lines.push(`![image](images/${id})`, '');
      if (message.text) lines.push(message.text, '');
      continue;
    }
    const version = currentVersion(message);
    lines.push(`**Assistant**${version.method ? ` (${version.method})` : ''}:`, '', version.text || '_(no text)_', '');
    if (version.status !== 'done') lines.push(`_${version.status}${version.error ? `: ${version.error}` : ''}_`, '');
    const s = version.stats;
    if (s) {
      lines.push(
        `<sub>first token ${Math.round(s.timeToFirstTokenMs)} ms · prefill ${Math.round(s.prefillMs)} ms · ${s.decodeTokensPerSec.toFixed(1)} tok/s · ` +
          `visual tokens ${s.visualTokensKept}/${s.visualTokensTotal} · compute ${s.visualTokensTotal === 0 ? 'none (text only)' : formatFlopsShare(s.tflops * 1e12, s.tflopsUnpruned * 1e12)} · ${s.executionProvider}</sub>`,
        '',
      );
    }
  }
  return lines.join('\n');
}

/** A file name from a title: letters, digits, dashes; never empty. */
export function fileNameFor(title: string, extension: string): string {
  const base =
    title
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'export';
  return `${base}.${extension}`;
}

/**
 * A suggested file name as every save path keeps it: characters a browser download or a file system
 * would change (`:` `/` `\\` `*` `?` spaces...) become `_` here, so the name the app reports is the name saved.
 */
export function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9._=+-]/g, '_');
}
