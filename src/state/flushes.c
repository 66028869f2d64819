/*-------------------------------------------------------------------------
 *
 * flushes.c
 *	  The groups of continuous views in shared memory, as flushes write
 *	  them: flush sequencing (which groups a flush takes, the ring of
 *	  flushes readers look up), the horizon of the snapshots that may still
 *	  read a view, eviction of flushed groups, a backfill's spills, and a
 *	  Kafka view's offsets.
 *
 * The locking protocol is that of state_store.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/proc.h"

#include "state/state_store.h"
#include "state/store_internal.h"

/*
 * Let base_seq follow the flushes every snapshot sees.  Caller holds the
 * view lock exclusively; horizon is the oldest transaction a snapshot of
 * the database may still consider running.
 */
static void
advance_base(SharedView *sv, TransactionId horizon)
{
	int			drop = 0;

	while (drop < sv->nflushes)
	{
		FlushRecord *r = &sv->flushes[drop];

		if (!TransactionIdIsValid(r->xid) ||
			!TransactionIdPrecedes(r->xid, horizon) ||
			!TransactionIdDidCommit(r->xid))
			break;
		sv->base_seq = r->seq;
		drop++;
	}
	if (drop > 0)
	{
		memmove(sv->flushes, sv->flushes + drop, sizeof(FlushRecord) * (sv->nflushes - drop));
		sv->nflushes -= drop;
	}
}

/*
 * Copy, in CurrentMemoryContext, the groups stamped seq (the changed ones,
 * at the head of the recency list), giving row ids from *next_gid to those
 * that have none.  Caller holds the view lock exclusively.
 */
static int
copy_changed(SharedView *sv, uint64 seq, int64 *next_gid, FlushItem **items)
{
	int			n = 0;
	dsa_pointer dp;
	FlushItem  *out;

	for (dp = sv->head; DsaPointerIsValid(dp); dp = store_entry_at(dp)->next)
	{
		if (store_entry_at(dp)->seq != seq)
			break;
		n++;
	}
	out = palloc(sizeof(FlushItem) * Max(n, 1));
	n = 0;
	for (dp = sv->head; DsaPointerIsValid(dp); dp = store_entry_at(dp)->next)
	{
		StoreEntry *e = store_entry_at(dp);
		FlushItem  *item = &out[n];

		if (e->seq != seq)
			break;
		if (e->gid == 0)
			e->gid = (*next_gid)++;
		item->entry = dp;
		item->gid = e->gid;
		item->tid = e->tid;
		item->live = e->live;
		item->key = palloc(e->keylen);
		memcpy(item->key, ENTRY_KEY(e), e->keylen);
		item->block = palloc(sv->layout.block_size);
		store_read_block(sv, ENTRY_BLOCK(e), item->block);
		n++;
	}
	*items = out;
	return n;
}

/*
 * StoreFlushBegin takes the groups changed since the last flush, copied in
 * CurrentMemoryContext, and opens flush number *seq.  Returns their count;
 * with none (and no TRUNCATE to write), no flush is opened.  *truncate
 * tells that the flush must first empty the state table (the source was
 * truncated).  Groups never flushed get their row id here, from *next_gid:
 * the worker goes on changing groups while the flush writes, and a reader
 * must be able to match a group changed since with its row as soon as the
 * flush commits.
 */
int
StoreFlushBegin(SharedView *sv, uint64 *seq, FlushItem **items, bool *truncate,
				int64 *next_gid, StreamPartition **parts, int *nparts)
{
	int			n;
	FlushItem  *out;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	/* the stream position the groups are exact at, taken with them */
	*nparts = sv->noffsets;
	*parts = NULL;
	if (sv->noffsets > 0)
	{
		*parts = palloc(sizeof(StreamPartition) * sv->noffsets);
		memcpy(*parts, dsa_get_address(store_area, sv->offsets),
			   sizeof(StreamPartition) * sv->noffsets);
	}
	*seq = sv->pending_seq;
	*truncate = (sv->truncate_seq == *seq);
	if (!*truncate &&
		(!DsaPointerIsValid(sv->head) || store_entry_at(sv->head)->seq != *seq))
	{
		LWLockRelease(&sv->lock);
		*items = NULL;
		return 0;
	}
	n = copy_changed(sv, *seq, next_gid, &out);

	/* a full ring forgets its oldest flush: readers then fall back to base */
	if (sv->nflushes == STORE_FLUSH_RING)
	{
		memmove(sv->flushes, sv->flushes + 1, sizeof(FlushRecord) * (STORE_FLUSH_RING - 1));
		sv->nflushes--;
	}
	sv->flushes[sv->nflushes].seq = *seq;
	sv->flushes[sv->nflushes].xid = InvalidTransactionId;
	sv->nflushes++;
	sv->pending_seq++;
	LWLockRelease(&sv->lock);

	*items = out;
	return n;
}

/*
 * StoreFlushXid records the transaction that writes flush seq, before it
 * commits: from its commit on, readers whose snapshot sees it read these
 * groups from the state table.
 */
void
StoreFlushXid(SharedView *sv, uint64 seq, TransactionId xid)
{
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	for (int i = sv->nflushes - 1; i >= 0; i--)
	{
		if (sv->flushes[i].seq == seq)
		{
			sv->flushes[i].xid = xid;
			break;
		}
	}
	LWLockRelease(&sv->lock);
}

/*
 * StoreFlushEnd closes a flush.  Committed: the groups learn their rows'
 * new versions.  Not committed: its groups are changed again, for
 * the next flush to write.
 */
void
StoreFlushEnd(SharedView *sv, uint64 seq, FlushItem *items, int n, bool committed)
{
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	if (committed)
	{
		for (int i = 0; i < n; i++)
			store_entry_at(items[i].entry)->tid = items[i].tid;
		sv->flush_count++;
		sv->last_flush_at = GetCurrentTimestamp();
	}
	else
	{
		for (int i = 0; i < sv->nflushes; i++)
		{
			if (sv->flushes[i].seq == seq)
			{
				memmove(sv->flushes + i, sv->flushes + i + 1,
						sizeof(FlushRecord) * (sv->nflushes - i - 1));
				sv->nflushes--;
				break;
			}
		}
		for (dsa_pointer dp = sv->head; DsaPointerIsValid(dp); dp = store_entry_at(dp)->next)
		{
			StoreEntry *e = store_entry_at(dp);

			if (e->seq < seq)
				break;
			e->seq = sv->pending_seq;
		}
	}
	LWLockRelease(&sv->lock);
}

/* Unlink an entry from its bucket chains. */
static void
bucket_unlink(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	dsa_pointer *link = &store_bucket_array(sv)[e->hash & (sv->nbuckets - 1)];

	while (DsaPointerIsValid(*link) && *link != dp)
		link = &store_entry_at(*link)->bucket_next;
	if (!DsaPointerIsValid(*link))
		elog(ERROR, "flowstate group missing from its bucket");
	*link = e->bucket_next;
	if (!sv->part_index)
		return;
	/* a key's windows may be many: this chain is doubly linked */
	if (DsaPointerIsValid(e->part_prev))
		store_entry_at(e->part_prev)->part_next = e->part_next;
	else
		store_bucket_array(sv)[store_part_slot(sv->nbuckets, e->part_hash)] = e->part_next;
	if (DsaPointerIsValid(e->part_next))
		store_entry_at(e->part_next)->part_prev = e->part_prev;
}

/*
 * StoreSetOffsets records how far a Kafka view's groups go in each
 * partition: next[p] is the next offset of partition p, or -1 where the
 * caller has nothing to say; max_ts[p] (if max_ts is not NULL) the largest
 * event time of its messages up to there, PG_INT64_MIN for none.  Offsets
 * and event times only go forward.  A partition the caller says something
 * of was active at now (0: leave as it was), and so was a partition new
 * here (StoreNotePartitions).  Caller holds the view lock exclusively.
 */
void
StoreSetOffsets(SharedView *sv, const int64 *next, const int64 *max_ts, int n, TimestampTz now)
{
	StreamPartition *cur;

	StoreNotePartitions(sv, n, now);
	cur = dsa_get_address(store_area, sv->offsets);
	for (int p = 0; p < n; p++)
	{
		if (next[p] < 0)
			continue;
		if (next[p] > cur[p].next)
			cur[p].next = next[p];
		if (max_ts != NULL && max_ts[p] > cur[p].max_ts)
			cur[p].max_ts = max_ts[p];
		if (now != 0)
			cur[p].active_at = now;
	}
}

/*
 * StoreNotePartitions makes a Kafka view's partitions at least n: those
 * new here have no offset nor event time yet and were active at now (the
 * time they have to show up before they count as idle).  Caller holds the
 * view lock exclusively.
 */
void
StoreNotePartitions(SharedView *sv, int n, TimestampTz now)
{
	dsa_pointer dp;
	StreamPartition *grown;

	if (n <= sv->noffsets)
		return;
	dp = dsa_allocate(store_area, sizeof(StreamPartition) * n);
	grown = dsa_get_address(store_area, dp);
	for (int p = 0; p < n; p++)
	{
		grown[p].next = -1;
		grown[p].max_ts = PG_INT64_MIN;
		grown[p].active_at = now;
	}
	if (sv->noffsets > 0)
	{
		memcpy(grown, dsa_get_address(store_area, sv->offsets),
			   sizeof(StreamPartition) * sv->noffsets);
		dsa_free(store_area, sv->offsets);
	}
	sv->offsets = dp;
	sv->bytes += sizeof(StreamPartition) * (n - sv->noffsets);
	sv->noffsets = n;
}

/*
 * StoreGetOffsets copies a Kafka view's next offsets (see StoreSetOffsets)
 * in CurrentMemoryContext; returns their count.  Caller holds the view lock.
 */
int
StoreGetOffsets(SharedView *sv, int64 **next)
{
	StreamPartition *cur;

	*next = NULL;
	if (sv->noffsets == 0)
		return 0;
	*next = palloc(sizeof(int64) * sv->noffsets);
	cur = dsa_get_address(store_area, sv->offsets);
	for (int p = 0; p < sv->noffsets; p++)
		(*next)[p] = cur[p].next;
	return sv->noffsets;
}

/*
 * StoreWaitBegin and StoreWaitEnd bracket a wait in flowstate.wait_for():
 * meanwhile, the snapshot of the waiting statement does not keep flushed
 * groups in shared memory (a statement that reads a view after waiting in
 * the same snapshot gets an error if it needed them, see StoreCapture).
 * A transaction snapshot (REPEATABLE READ) keeps them as any other.
 */
void
StoreWaitBegin(void)
{
	if (!IsolationUsesXactSnapshot() && store_waiting != NULL)
		store_waiting[MyProc->pgprocno] = true;
}

void
StoreWaitEnd(void)
{
	if (store_waiting != NULL)
		store_waiting[MyProc->pgprocno] = false;
}

/*
 * StoreHorizon is the oldest transaction a snapshot that may read the
 * views of a database may still consider running: the least xmin of the
 * database's backends, but for the caller's, those waiting in
 * flowstate.wait_for(), and those of autovacuum, VACUUM and logical
 * decoding.  A backend publishes its xmin before it uses its
 * snapshot, and one taken after a flush committed sees that flush.
 */
TransactionId
StoreHorizon(Oid dboid)
{
	TransactionId horizon = ReadNextTransactionId();

	for (int i = 0; i < (int) ProcGlobal->allProcCount; i++)
	{
		PGPROC	   *proc = &ProcGlobal->allProcs[i];
		TransactionId xmin;

		/* autovacuum, VACUUM and logical decoding read no view */
		if (proc == MyProc || proc->pid == 0 || proc->databaseId != dboid ||
			(i < store_nprocs() && store_waiting[i]) ||
			(proc->statusFlags & (PROC_IS_AUTOVACUUM | PROC_IN_VACUUM | PROC_IN_LOGICAL_DECODING)))
			continue;
		xmin = *(volatile TransactionId *) &proc->xmin;
		if (TransactionIdIsNormal(xmin) && TransactionIdPrecedes(xmin, horizon))
			horizon = xmin;
	}
	return horizon;
}

/* Drop a flushed group from shared memory (the view's lock held exclusively). */
static void
drop_entry(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	store_list_unlink(sv, dp, e);
	bucket_unlink(sv, dp, e);
	sv->evicted_seq = Max(sv->evicted_seq, e->seq);
	store_free_vars(sv, e);
	sv->bytes -= store_entry_size(sv, e->keylen);
	sv->nentries--;
	dsa_free(store_area, dp);
}

/* Drop groups from the tail, stamped up to max_seq, down to target_bytes. */
static void
evict_tail(SharedView *sv, int64 target_bytes, uint64 max_seq)
{
	while (sv->bytes > target_bytes && DsaPointerIsValid(sv->tail))
	{
		dsa_pointer dp = sv->tail;
		StoreEntry *e = store_entry_at(dp);

		if (e->seq > max_seq)
			break;
		drop_entry(sv, dp, e);
		sv->evictions++;
		sv->complete = false;
		sv->pressed_out = true;
	}
	store_maybe_shrink(sv);
}

/*
 * StoreEvict drops flushed groups every snapshot sees, least recently
 * changed first, until the view holds at most target_bytes.  horizon is the
 * oldest transaction a snapshot that may read the view may still consider
 * running (StoreHorizon).  Returns the bytes the view holds then.
 */
int64
StoreEvict(SharedView *sv, int64 target_bytes, TransactionId horizon)
{
	int64		bytes;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	advance_base(sv, horizon);
	evict_tail(sv, target_bytes, sv->base_seq);
	bytes = sv->bytes;
	LWLockRelease(&sv->lock);
	return bytes;
}

/*
 * StoreEvictFinal drops the groups of final windows, those whose window
 * key (key keyno) starts at or before cutoff, once every snapshot sees
 * their flush (horizon as for StoreEvict).  Nothing changes them again (a
 * row of a final window is late, refused before any lookup) and readers
 * find them in the state table, so shared memory stays complete for the
 * other windows: a group it does not hold is new.  That needs one writer
 * and one watermark: views over tables, whose decoder is both (engine/
 * flush.c).  Walks every group, the view's lock held.  Returns how many
 * groups of final windows are left, flushed too recently.
 */
int64
StoreEvictFinal(SharedView *sv, int keyno, int64 cutoff, TransactionId horizon)
{
	int64		left = 0;
	dsa_pointer dp;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	advance_base(sv, horizon);
	for (dp = sv->head; DsaPointerIsValid(dp);)
	{
		StoreEntry *e = store_entry_at(dp);
		dsa_pointer next = e->next;
		Datum		values[FLOWSTATE_MAX_KEYS];
		bool		isnull[FLOWSTATE_MAX_KEYS];

		GroupKeyRead(&sv->layout, ENTRY_KEY(e), values, isnull);
		if (!isnull[keyno] && DatumGetInt64(values[keyno]) <= cutoff)
		{
			if (e->seq > sv->base_seq)
				left++;
			else
			{
				drop_entry(sv, dp, e);
				sv->evictions++;
			}
		}
		dp = next;
	}
	store_maybe_shrink(sv);
	LWLockRelease(&sv->lock);
	return left;
}

/*
 * StoreBackfillBegin opens the flush that a backfill writes in its
 * transaction, whose id it records with StoreFlushXid before it commits:
 * readers whose snapshot does not see it take no group from shared
 * memory, and read the state table as it was before the backfill (the
 * view's previous state: nothing, for a new view); once it commits, they
 * find in the state table the groups the backfill wrote there, and the
 * others here.  Groups the backfill changes are stamped with the flush
 * after it.  Returns its number.
 */
uint64
StoreBackfillBegin(SharedView *sv)
{
	uint64		seq;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	seq = sv->pending_seq;
	if (sv->nflushes == STORE_FLUSH_RING)
	{
		memmove(sv->flushes, sv->flushes + 1, sizeof(FlushRecord) * (STORE_FLUSH_RING - 1));
		sv->nflushes--;
	}
	sv->flushes[sv->nflushes].seq = seq;
	sv->flushes[sv->nflushes].xid = InvalidTransactionId;
	sv->nflushes++;
	sv->backfill_seq = seq;
	sv->pending_seq = seq + 1;
	for (dsa_pointer dp = sv->head; DsaPointerIsValid(dp); dp = store_entry_at(dp)->next)
		store_entry_at(dp)->seq = sv->pending_seq;
	LWLockRelease(&sv->lock);
	return seq;
}

/*
 * StoreSpillBegin copies, like StoreFlushBegin, the groups a backfill
 * changed since it last wrote them, giving row ids to those that have
 * none; the backfill writes them in its own transaction, which is flush
 * spill_seq (StoreBackfillBegin).
 */
int
StoreSpillBegin(SharedView *sv, FlushItem **items, int64 *next_gid)
{
	int			n;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	n = copy_changed(sv, sv->pending_seq, next_gid, items);
	LWLockRelease(&sv->lock);
	return n;
}

/*
 * StoreSpillEnd: the groups of a spill are written (in flush spill_seq, not
 * committed yet).  They move to the tail, where StoreEvictSpilled finds
 * them; the backfill changes nothing between the two calls.
 */
void
StoreSpillEnd(SharedView *sv, FlushItem *items, int n, uint64 spill_seq)
{
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	for (int i = n - 1; i >= 0; i--)
	{
		dsa_pointer dp = items[i].entry;
		StoreEntry *e = store_entry_at(dp);

		e->tid = items[i].tid;
		e->seq = spill_seq;
		store_list_unlink(sv, dp, e);
		store_list_push_tail(sv, dp, e);
	}
	LWLockRelease(&sv->lock);
}

/*
 * StoreEvictSpilled drops the groups a backfill wrote (StoreSpillEnd) or
 * read back, least recently changed first, down to target_bytes, although
 * no snapshot sees them in the state table yet: until the backfill commits,
 * readers take no group from its view's state table.  Returns the bytes the
 * view holds then.
 */
int64
StoreEvictSpilled(SharedView *sv, int64 target_bytes, uint64 spill_seq)
{
	int64		bytes;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	evict_tail(sv, target_bytes, spill_seq);
	bytes = sv->bytes;
	LWLockRelease(&sv->lock);
	return bytes;
}

