/* SPDX-License-Identifier: MIT
 * The settle writer: a thread that takes settle records from a bounded queue
 * and commits them in batches, one transaction (one fsync) per batch, so the
 * ledger keeps up with many requests per second without the event loop ever
 * waiting for the disk.
 *
 * Bounded: when `capacity` records are waiting, kz_ledger_writer_submit
 * refuses with KZ_ELIMIT and the server answers 503 rather than serve a
 * request it could not meter. At most capacity + max_batch records are held
 * in memory.
 *
 * Each record's outcome reaches its callback after its batch committed (or
 * failed), on the writer thread. One failing record (a bad key id) does not
 * fail the others of its batch; a failing transaction (busy, disk full) fails
 * every record of the batch, and their reservations stay open until settled
 * again or swept.
 *
 * Threads: submit and flush from any thread; stop from one thread once, with
 * no submit running or following. Callbacks must not call flush or stop.
 * Ownership: the writer is freed by stop; records are copied at submit.
 */
#ifndef KZ_LEDGER_WRITER_H
#define KZ_LEDGER_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "ledger/ledger.h"

struct kz_ledger_writer; /* opaque */

struct kz_ledger_writer_opts {
    size_t capacity;  /* [4096] records waiting at most */
    size_t max_batch; /* [256] records per transaction at most */
    int linger_ms;    /* [0] after the first record of a batch, wait this long for more (or a full
                       * batch): fewer commits when nobody waits for each one */
};

/* The outcome of one record: rc and err as kz_ledger_settle would give them,
 * stored and duplicate as its out-parameters (valid during the call). */
typedef void (*kz_ledger_settled_fn)(void *ud, kz_status rc, const struct kz_err *err,
                                     const struct kz_ledger_usage *stored, int duplicate);

/* Starts the thread. opts may be NULL. The ledger must outlive the writer. */
kz_status kz_ledger_writer_start(struct kz_ledger *l, const struct kz_ledger_writer_opts *opts,
                                 struct kz_ledger_writer **out, struct kz_err *err);

/* Queues kz_ledger_settle(reservation, u) and returns at once. The record is
 * validated here (KZ_EINVAL naming the field; nothing queued). KZ_ELIMIT
 * "ledger queue full" when capacity records are waiting. done may be NULL. */
kz_status kz_ledger_writer_submit(struct kz_ledger_writer *w, int64_t reservation, const struct kz_ledger_usage *u,
                                  kz_ledger_settled_fn done, void *ud, struct kz_err *err);

/* Returns once every record submitted before the call has been committed or
 * failed and its callback has returned. */
void kz_ledger_writer_flush(struct kz_ledger_writer *w);

/* Drains the queue (every submitted record is committed or failed, and its
 * callback called), joins the thread and frees the writer. NULL is a no-op. */
void kz_ledger_writer_stop(struct kz_ledger_writer *w);

#endif
