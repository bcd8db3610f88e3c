/* SPDX-License-Identifier: MIT
 * The settle journal: usage records made durable before an answer is sent.
 *
 * Committing a record to the ledger takes a transaction and an fsync, which
 * a request should not wait for. Instead the server appends the record to
 * this file (one write(), no fsync) and answers; the ledger's writer thread
 * commits it behind the answer. A write() that returned is in the OS cache,
 * so it survives a kill of the process; at the next start kz_journal_open
 * hands every record in the file back (to be settled again: the ledger
 * ignores request ids it already holds) and empties it. A power loss can
 * lose what was appended since the last fsync of the OS: that is the
 * documented cost (docs/LEDGER.md), the same as synchronous=NORMAL.
 *
 * Format: one JSON object per line, the fields of struct kz_ledger_usage. A
 * line that does not parse (a write cut short) is skipped and counted.
 *
 * Threads: one thread. Ownership: the caller's (kz_journal_close).
 */
#ifndef KZ_JOURNAL_H
#define KZ_JOURNAL_H

#include "core/status.h"
#include "ledger/ledger.h"

struct kz_journal; /* opaque */

typedef kz_status (*kz_journal_replay_fn)(void *ud, const struct kz_ledger_usage *u, struct kz_err *err);

/* Opens (creates) the journal at `path` and locks it (KZ_EIO when another
 * process holds it), replays what it holds through fn
 * (stopping at the first error, which is returned: nothing is dropped) and
 * empties it. *skipped (may be NULL) gets the number of unreadable lines. */
kz_status kz_journal_open(const char *path, kz_journal_replay_fn fn, void *ud, struct kz_journal **out,
                          long *skipped, struct kz_err *err);

/* Appends one record. KZ_EIO (with errno's text: a full disk says so) when
 * it could not be written whole; nothing may then be acknowledged. */
kz_status kz_journal_append(struct kz_journal *j, const struct kz_ledger_usage *u, struct kz_err *err);

/* Call when every appended record is in the ledger: empties the file once
 * it has grown past a few MiB (replaying records the ledger holds is
 * harmless, only slower). */
void kz_journal_reset(struct kz_journal *j);

void kz_journal_close(struct kz_journal *j); /* NULL is a no-op */

#endif
