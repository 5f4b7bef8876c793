import { formatFlopsShare } from '../../shared/compute.js';
import { type AnswerVersion, currentVersion, type Conversation } from '../../shared/conversation.js';

/** A conversation as Markdown: title, then each turn with the shown answer version and its numbers, and each comparison side by side. */
export function conversationToMarkdown(conversation: Conversation, imageSrc: (id: string) => string = (id) => `images/${id}`): string {
  const lines = [`# ${conversation.title}`, ''];
  for (const message of conversation.messages) {
    if (message.role === 'user' || message.role === 'comparison') {
      const twoModels = message.role === 'comparison' && message.left.modelId !== message.right.modelId;
      lines.push(message.role === 'user' ? '**You:**' : `**You, comparing two ${twoModels ? 'models' : 'methods'}:**`, '');
      for (const id of message.images) lines.push(`![image](${imageSrc(id)})`, '');
      if (message.text) lines.push(message.text, '');
      if (message.role === 'comparison')
        for (const side of ['left', 'right'] as const) {
          const { method, modelId } = message[side];
          const label = twoModels ? `${method}, model ${modelId ?? 'unknown'}` : method;
          lines.push(...answerLines(`**${side === 'left' ? 'Left' : 'Right'}** (${label}):`, message[side]));
        }
      continue;
    }
    const version = currentVersion(message);
    lines.push(...answerLines(`**Assistant**${version.method ? ` (${version.method})` : ''}:`, version));
  }
  return lines.join('\n');
}

/** One answer under its heading: the text, how it ended when not done, and its numbers. */
function answerLines(heading: string, answer: Pick<AnswerVersion, 'text' | 'status' | 'error' | 'stats'>): string[] {
  const lines = [heading, '', answer.text || '_(no text)_', ''];
  if (answer.status !== 'done') lines.push(`_${answer.status}${answer.error ? `: ${answer.error}` : ''}_`, '');
  const s = answer.stats;
  if (s) {
    lines.push(
      `<sub>first token ${Math.round(s.timeToFirstTokenMs)} ms · prefill ${Math.round(s.prefillMs)} ms · ${s.decodeTokensPerSec.toFixed(1)} tok/s · ` +
        `visual tokens ${s.visualTokensKept}/${s.visualTokensTotal} · compute ${s.visualTokensTotal === 0 ? 'none (text only)' : formatFlopsShare(s.tflops * 1e12, s.tflopsUnpruned * 1e12)} · ${s.executionProvider}</sub>`,
      '',
    );
  }
  return lines;
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
