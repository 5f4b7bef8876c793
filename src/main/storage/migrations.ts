import { CONVERSATION_SCHEMA_VERSION } from '../../shared/conversation.js';

/** A step that turns a conversation document of version `from` into version `from + 1`. */
export type Migration = (doc: Record<string, unknown>) => Record<string, unknown>;

/**
 * Conversation migrations, keyed by the version they upgrade from. Version 1 is the first released
 * format, so the table is empty; add `1: (doc) => ...` (and bump CONVERSATION_SCHEMA_VERSION) when the
 * format changes.
 */
export const conversationMigrations: Readonly<Record<number, Migration>> = {};

export class UnsupportedSchemaError extends Error {}

/** Runs every migration from the document's version up to `target`, in order. */
export function migrate(
  raw: unknown,
  migrations: Readonly<Record<number, Migration>> = conversationMigrations,
  target = CONVERSATION_SCHEMA_VERSION,
): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UnsupportedSchemaError('not a JSON object');
  let doc = raw as Record<string, unknown>;
  let version = doc.schemaVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    throw new UnsupportedSchemaError(`missing or invalid schemaVersion: ${JSON.stringify(version)?.slice(0, 40)}`);
  }
  if (version > target) {
    throw new UnsupportedSchemaError(`schemaVersion ${version} is newer than this app understands (${target})`);
  }
  while (version < target) {
    const step = migrations[version];
    if (!step) throw new UnsupportedSchemaError(`no migration from schemaVersion ${version}`);
    doc = { ...step(doc), schemaVersion: version + 1 };
    version += 1;
  }
  return doc;
}
