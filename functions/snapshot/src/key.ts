// Object keys of the snapshot function. Instant snapshot keys and the dead-letter prefix belong to the
// archive format (archive/src/keys.ts), which restore reads too; a snapshot's key is derived from its
// ping alone, so every delivery of the same ping names the same object. Dead letters are this
// function's own.
import { createHash } from 'node:crypto';
import { MAX_EVENT_ID_LENGTH } from '../../../events/src/index.js';
import { DEAD_LETTER_PREFIX, encodeId, instantPath } from '../../../archive/src/keys.js';

export { DEAD_LETTER_PREFIX, instantPath, parseSnapshotKey, snapshotKey } from '../../../archive/src/keys.js';

export function deadLetterKey(time: string, id: string): string {
  // Dead letters are kept whatever their id; one too long for a key is named by its digest instead.
  const encoded = encodeId(id);
  const name = encoded.length > MAX_EVENT_ID_LENGTH ? `sha256-${createHash('sha256').update(id).digest('hex')}` : encoded;
  return `${DEAD_LETTER_PREFIX}${instantPath(time)}-${name}.json`;
}
