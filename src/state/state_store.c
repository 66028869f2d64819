/*-------------------------------------------------------------------------
 *
 * state_store.c
 *	  Owns the groups of continuous views in shared memory: one DSA area for
 *	  the server, created in place in the main shared memory at startup, and
 *	  in it a dshash table of SharedView (one per view, keyed by database and
 *	  state table) whose groups form a chained hash table and a recency list.
 *
 * Shared memory is a write-back cache over the state tables: a group is
 * either here, with its newest state, or only in its state table.  Each
 * change of a group stamps it with pending_seq, the number of the flush
 * that will write it, and moves it to the head of the recency list, so the
 * list is ordered by seq.  A flush (flush.c) takes the groups stamped with
 * pending_seq, increments it, and records its transaction id in the view's
 * ring of flushes.
 *
 * A reader sees a group's newest state from here exactly when its snapshot
 * does not see the flush that wrote that state: it finds the newest flush
 * its snapshot sees (visible_seq), takes every group stamped later, and the
 * view's SQL takes all other groups from the state table.  base_seq is a
 * flush every snapshot sees; groups stamped up to it may leave shared memory
 * (eviction), and a reader whose snapshot sees no flush of the ring uses it.
 *
 * A backfill is one flush, written by its own transaction as it reads the
 * source (StoreBackfillBegin): groups beyond the view's memory go to the
 * state table and leave at once, since readers that do not see that
 * transaction take nothing from shared memory.
 *
 * A batch is written whole or not at all: the memory of all its groups is
 * allocated first (StorePrepare), then they change (StoreFinish).
 *
 * Locking protocol
 *
 *	- The dshash table of views has its own partition locks.  A reader holds
 *	  its view's partition lock (shared) for the whole of a capture; a view
 *	  is deleted only through dshash, with that lock exclusive, so it cannot
 *	  vanish under a reader.  Registering a view (re)initialises it under the
 *	  exclusive partition lock.
 *	- SharedView.lock guards every other field of a SharedView and every
 *	  StoreEntry and var chunk of the view.  The view's writer (the decoding
 *	  worker of its database) takes it exclusive to change groups, to begin
 *	  and end a flush and to evict; readers and monitoring take it shared.
 *	  The writer may read its own view's groups under a shared lock.
 *	- Lock order: partition lock, then view lock.  Nobody calls dshash while
 *	  holding a view lock, nor sleeps, nor does I/O other than clog lookups.
 *	- The writer keeps its SharedView pointer without the partition lock:
 *	  only the writer deletes its view.
 *	- A view over a Kafka stream consumed by several workers has one owner
 *	  (worker 0: it registers, loads, flushes, evicts and deletes the view)
 *	  and other writers, which find it through dshash for each batch and
 *	  hold the partition lock (shared) while they apply the batch under the
 *	  view lock, exclusively, without keeping any group pointer from one
 *	  hold of the view lock to the next.  They notice a view registered
 *	  again by its generation, and groups that left by the eviction count.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/transam.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "lib/dshash.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/shmem.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "aggregates/aggregate.h"
#include "guc.h"
#include "state/state_store.h"

/* Shared memory handed to the DSA area before it grows into DSM segments. */
#define STORE_INITIAL_SIZE	(1024 * 1024)
#define STORE_INITIAL_BUCKETS 1024

typedef struct StoreControl
{
	int			area_tranche;
	int			view_tranche;
	dshash_table_handle views_handle;
	char		area_space[FLEXIBLE_ARRAY_MEMBER];
} StoreControl;

/* A var field's value in shared memory: capacity, then the varlena. */
typedef struct VarChunk
{
	Size		capacity;
	char		data[FLEXIBLE_ARRAY_MEMBER];
} VarChunk;

static StoreControl *control = NULL;

/*
 * Per PGPROC: the backend waits in flowstate.wait_for(), its snapshot
 * reading no view meanwhile (StoreHorizon).  Written by its backend only.
 */
static bool *waiting = NULL;
static dsa_area *area = NULL;
static dshash_table *views = NULL;

static dshash_parameters views_params = {
	sizeof(StoreKey),
	sizeof(SharedView),
	dshash_memcmp,
	dshash_memhash,
	0							/* tranche: set at attach */
};

/*
 * StoreShmemSize is what the store needs of the main shared memory.
 */
static int
store_nprocs(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
StoreShmemSize(void)
{
	return add_size(add_size(offsetof(StoreControl, area_space), STORE_INITIAL_SIZE),
					MAXALIGN(sizeof(bool) * store_nprocs()));
}

/*
 * StoreShmemInit creates the DSA area and the table of views; called from
 * the shared memory startup hook with AddinShmemInitLock held.
 */
void
StoreShmemInit(void)
{
	bool		found;

	waiting = ShmemInitStruct("flowstate waiters", sizeof(bool) * store_nprocs(), &found);
	if (!found)
		memset(waiting, 0, sizeof(bool) * store_nprocs());
	control = ShmemInitStruct("flowstate store",
							  add_size(offsetof(StoreControl, area_space), STORE_INITIAL_SIZE),
							  &found);
	if (found)
		return;

	control->area_tranche = LWLockNewTrancheId();
	control->view_tranche = LWLockNewTrancheId();
	area = dsa_create_in_place(control->area_space, STORE_INITIAL_SIZE,
							   control->area_tranche, NULL);
	dsa_pin(area);

	/* keep the table of views in the main shared memory */
	dsa_set_size_limit(area, STORE_INITIAL_SIZE);
	views_params.tranche_id = control->view_tranche;
	views = dshash_create(area, &views_params, NULL);
	control->views_handle = dshash_get_hash_table_handle(views);
	dsa_set_size_limit(area, -1);

	dshash_detach(views);
	dsa_detach(area);
	views = NULL;
	area = NULL;
}

static void
store_detach(int code, Datum arg)
{
	if (views)
		dshash_detach(views);
	if (area)
	{
		dsa_detach(area);
		dsa_release_in_place(control->area_space);
	}
	views = NULL;
	area = NULL;
}

/* Attach this process to the store, once. */
static void
store_attach(void)
{
	MemoryContext oldcxt;

	if (area != NULL)
		return;

	LWLockRegisterTranche(control->area_tranche, "flowstate store");
	LWLockRegisterTranche(control->view_tranche, "flowstate view");

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	area = dsa_attach_in_place(control->area_space, NULL);
	dsa_pin_mapping(area);
	views_params.tranche_id = control->view_tranche;
	views = dshash_attach(area, &views_params, control->views_handle, NULL);
	MemoryContextSwitchTo(oldcxt);

	before_shmem_exit(store_detach, (Datum) 0);
}

/*
 * StoreArea returns the DSA area, attaching to it if needed; the decoding
 * worker sets its size limit from flowstate.memory_limit.
 */
dsa_area *
StoreArea(void)
{
	store_attach();
	return area;
}

static inline StoreEntry *
entry_at(dsa_pointer dp)
{
	return (StoreEntry *) dsa_get_address(area, dp);
}

static inline dsa_pointer *
bucket_array(SharedView *sv)
{
	return (dsa_pointer *) dsa_get_address(area, sv->buckets);
}

static Size
entry_size(SharedView *sv, Size keylen)
{
	return offsetof(StoreEntry, data) + MAXALIGN(keylen) + sv->layout.block_size;
}

/* Free the var chunks of an entry's block. */
static void
free_vars(SharedView *sv, StoreEntry *e)
{
	char	   *block = ENTRY_BLOCK(e);

	for (int i = 0; i < sv->layout.nvars; i++)
	{
		dsa_pointer *vp = (dsa_pointer *) (block + sv->layout.var_offsets[i]);

		if (DsaPointerIsValid(*vp))
		{
			VarChunk   *c = dsa_get_address(area, *vp);

			sv->bytes -= offsetof(VarChunk, data) + c->capacity;
			dsa_free(area, *vp);
			*vp = InvalidDsaPointer;
		}
	}
}

/* Free every group of a view and its bucket array. */
static void
free_groups(SharedView *sv)
{
	dsa_pointer dp = sv->head;

	while (DsaPointerIsValid(dp))
	{
		StoreEntry *e = entry_at(dp);
		dsa_pointer next = e->next;

		free_vars(sv, e);
		dsa_free(area, dp);
		dp = next;
	}
	if (DsaPointerIsValid(sv->buckets))
		dsa_free(area, sv->buckets);
	if (DsaPointerIsValid(sv->offsets))
		dsa_free(area, sv->offsets);
	sv->offsets = InvalidDsaPointer;
	sv->noffsets = 0;
	sv->buckets = InvalidDsaPointer;
	sv->head = sv->tail = InvalidDsaPointer;
	sv->nentries = 0;
	sv->nbuckets = 0;
	sv->bytes = 0;
}

/*
 * StoreRegisterView gives the calling writer an empty SharedView for a view.
 * Groups a previous writer left (it failed before flushing them) are
 * discarded: the new writer replays its source from the last flush.
 * Flush numbers keep increasing across writers.
 */
SharedView *
StoreRegisterView(StoreKey key, int32 view_id, Oid view_relid, Oid def_relid,
				  const ViewLayout *layout,
				  int64 memory_limit)
{
	SharedView *sv;
	bool		found;
	uint64		seq = 1;

	store_attach();
	sv = dshash_find_or_insert(views, &key, &found);
	if (found)
	{
		free_groups(sv);
		seq = Max(sv->pending_seq, sv->base_seq + 1) + 1;
		sv->generation++;
	}
	else
	{
		LWLockInitialize(&sv->lock, control->view_tranche);
		sv->offsets = InvalidDsaPointer;
		sv->noffsets = 0;
		sv->generation = 1;
	}
	sv->stream = false;
	sv->evictions = 0;

	sv->view_id = view_id;
	sv->view_relid = view_relid;
	sv->def_relid = def_relid;
	sv->status = VIEW_STARTING;
	sv->writer_pid = MyProcPid;
	memcpy(&sv->layout, layout, sizeof(ViewLayout));
	sv->buckets = dsa_allocate_extended(area, sizeof(dsa_pointer) * STORE_INITIAL_BUCKETS,
										DSA_ALLOC_ZERO);
	sv->nbuckets = STORE_INITIAL_BUCKETS;
	sv->nentries = 0;
	sv->head = sv->tail = InvalidDsaPointer;
	sv->complete = false;
	sv->pending_seq = seq;
	sv->base_seq = seq - 1;
	sv->truncate_seq = 0;
	sv->backfill_seq = 0;
	sv->evicted_seq = 0;
	sv->nflushes = 0;
	sv->bytes = sizeof(dsa_pointer) * STORE_INITIAL_BUCKETS;
	sv->memory_limit = memory_limit;
	sv->groups = 0;
	sv->float_sums = AggKeepsFloatSums(layout);
	sv->overflowed = 0;
	sv->rows_applied = sv->late_rows = sv->failed_rows = sv->recomputed = 0;
	sv->rows_per_second = 0;
	sv->applied_lsn = InvalidXLogRecPtr;
	sv->sides_lsn = InvalidXLogRecPtr;
	sv->sides_wanted = false;
	sv->has_watermark = false;
	sv->watermark = 0;
	sv->backfill_rows = sv->backfill_total = 0;
	sv->flush_count = 0;
	sv->last_flush_at = 0;
	sv->broken = false;
	sv->last_error[0] = '\0';
	dshash_release_lock(views, sv);
	return sv;
}

/*
 * StoreBreakView marks a view whose state cannot be read (see
 * IngestBreakView): readers get message as an error and monitoring shows
 * it until the view is registered again.  Its groups stay (a flush may be
 * writing them) until the view is unregistered.
 */
void
StoreBreakView(SharedView *sv, const char *message)
{
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	sv->broken = true;
	strlcpy(sv->last_error, message, sizeof(sv->last_error));
	LWLockRelease(&sv->lock);
}

/*
 * StoreUnregisterView deletes a view and its groups.
 */
void
StoreUnregisterView(SharedView *sv)
{
	StoreKey	key = sv->key;

	sv = dshash_find(views, &key, true);
	if (sv == NULL)
		return;
	free_groups(sv);
	dshash_delete_entry(views, sv);
}

/*
 * StoreForgetDatabase deletes every view of a database over tables: a
 * decoding worker that starts owns none yet.  The views of Kafka streams
 * are their owners' (registered again when an owner starts).
 */
void
StoreForgetDatabase(Oid dboid)
{
	dshash_seq_status status;
	SharedView *sv;

	store_attach();
	dshash_seq_init(&status, views, true);
	while ((sv = dshash_seq_next(&status)) != NULL)
	{
		if (sv->key.dboid != dboid || sv->stream)
			continue;
		free_groups(sv);
		dshash_delete_current(&status);
	}
	dshash_seq_term(&status);
}

/*
 * StoreTotalBytes is the shared memory the groups of every view of the
 * server hold, as their writers last counted it.
 */
int64
StoreTotalBytes(void)
{
	dshash_seq_status status;
	SharedView *sv;
	int64		total = 0;

	store_attach();
	dshash_seq_init(&status, views, false);
	while ((sv = dshash_seq_next(&status)) != NULL)
		total += sv->bytes;
	dshash_seq_term(&status);
	return total;
}

/*
 * StoreFindView returns a view with its partition lock held (shared), or
 * NULL; StoreReleaseView releases it.
 */
SharedView *
StoreFindView(StoreKey key)
{
	store_attach();
	return dshash_find(views, &key, false);
}

void
StoreReleaseView(SharedView *sv)
{
	dshash_release_lock(views, sv);
}

/*
 * StoreLookup finds the group of a key (values detoasted), or returns
 * InvalidDsaPointer.
 */
dsa_pointer
StoreLookup(SharedView *sv, const GroupKeys *gk, uint32 hash,
			const Datum *values, const bool *isnull)
{
	dsa_pointer dp = bucket_array(sv)[hash & (sv->nbuckets - 1)];

	while (DsaPointerIsValid(dp))
	{
		StoreEntry *e = entry_at(dp);

		if (e->hash == hash && GroupKeyMatches(gk, ENTRY_KEY(e), values, isnull))
			return dp;
		dp = e->bucket_next;
	}
	return InvalidDsaPointer;
}

StoreEntry *
StoreEntryGet(SharedView *sv, dsa_pointer dp)
{
	return entry_at(dp);
}

/* Copy a shared block into a local one; var fields into CurrentMemoryContext. */
static void
read_block(SharedView *sv, const char *shared, char *block)
{
	memcpy(block, shared, sv->layout.block_size);
	for (int i = 0; i < sv->layout.nvars; i++)
	{
		int32		off = sv->layout.var_offsets[i];
		dsa_pointer vp;
		char	   *copy = NULL;

		memcpy(&vp, shared + off, sizeof(vp));
		if (DsaPointerIsValid(vp))
		{
			VarChunk   *c = dsa_get_address(area, vp);
			Size		len = VARSIZE_ANY(c->data);

			copy = palloc(len);
			memcpy(copy, c->data, len);
		}
		*(Datum *) (block + off) = PointerGetDatum(copy);
	}
}

/*
 * StoreReadBlock copies a group's state into a local block.
 */
void
StoreReadBlock(SharedView *sv, dsa_pointer dp, char *block)
{
	read_block(sv, ENTRY_BLOCK(entry_at(dp)), block);
}

/*
 * Allocate what a block needs in shared memory (StorePrepare): its entry
 * when the group is new, and a chunk for each var field that outgrows the
 * one it has.  On failure nothing stays allocated.
 */
bool
StorePrepare(SharedView *sv, StoreWrite *w, dsa_pointer dp, Size keylen, const char *block)
{
	char	   *shared = NULL;

	w->is_new = !DsaPointerIsValid(dp);
	w->entry = dp;
	w->keylen = keylen;
	w->stored_overflowed = false;
	if (w->is_new)
	{
		w->entry = dsa_allocate_extended(area, entry_size(sv, keylen),
										 DSA_ALLOC_ZERO | DSA_ALLOC_NO_OOM);
		if (!DsaPointerIsValid(w->entry))
			return false;
	}
	else if (!w->fresh)
		shared = ENTRY_BLOCK(entry_at(dp));

	for (int i = 0; i < sv->layout.nvars; i++)
	{
		int32		off = sv->layout.var_offsets[i];
		char	   *val = DatumGetPointer(*(Datum *) (block + off));
		dsa_pointer old = InvalidDsaPointer;
		Size		len;

		if (shared)
			memcpy(&old, shared + off, sizeof(old));
		w->vars[i] = InvalidDsaPointer;
		if (val == NULL)
			continue;
		len = VARSIZE_ANY(val);
		if (DsaPointerIsValid(old) &&
			((VarChunk *) dsa_get_address(area, old))->capacity >= len)
		{
			w->vars[i] = old;
			continue;
		}
		w->vars[i] = dsa_allocate_extended(area, offsetof(VarChunk, data) + len + len / 2,
										   DSA_ALLOC_NO_OOM);
		if (!DsaPointerIsValid(w->vars[i]))
		{
			StoreCancel(sv, w, i);
			return false;
		}
		((VarChunk *) dsa_get_address(area, w->vars[i]))->capacity = len + len / 2;
	}
	return true;
}

/*
 * StoreCancel frees what StorePrepare allocated, for the first nvars var
 * fields (all of them: sv->layout.nvars).
 */
void
StoreCancel(SharedView *sv, StoreWrite *w, int nvars)
{
	char	   *shared = w->is_new || w->fresh ? NULL : ENTRY_BLOCK(entry_at(w->entry));

	for (int j = 0; j < nvars; j++)
	{
		dsa_pointer old = InvalidDsaPointer;

		if (shared)
			memcpy(&old, shared + sv->layout.var_offsets[j], sizeof(old));
		if (DsaPointerIsValid(w->vars[j]) && w->vars[j] != old)
			dsa_free(area, w->vars[j]);
	}
	if (w->is_new)
		dsa_free(area, w->entry);
	w->entry = InvalidDsaPointer;
}

/* Write a local block into an entry, into the chunks prepared for it. */
static void
apply_block(SharedView *sv, StoreEntry *e, const char *block, const StoreWrite *w)
{
	char	   *shared = ENTRY_BLOCK(e);

	for (int i = 0; i < sv->layout.nvars; i++)
	{
		int32		off = sv->layout.var_offsets[i];
		char	   *val = DatumGetPointer(*(Datum *) (block + off));
		dsa_pointer old = InvalidDsaPointer;

		if (!w->is_new)
			memcpy(&old, shared + off, sizeof(old));
		if (DsaPointerIsValid(old) && old != w->vars[i])
		{
			sv->bytes -= offsetof(VarChunk, data) +
				((VarChunk *) dsa_get_address(area, old))->capacity;
			dsa_free(area, old);
		}
		if (DsaPointerIsValid(w->vars[i]) && w->vars[i] != old)
			sv->bytes += offsetof(VarChunk, data) +
				((VarChunk *) dsa_get_address(area, w->vars[i]))->capacity;
		if (val != NULL)
			memcpy(((VarChunk *) dsa_get_address(area, w->vars[i]))->data, val,
				   VARSIZE_ANY(val));
	}

	memcpy(shared, block, sv->layout.block_size);
	for (int i = 0; i < sv->layout.nvars; i++)
		memcpy(shared + sv->layout.var_offsets[i], &w->vars[i], sizeof(dsa_pointer));
}

static void
list_unlink(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	if (DsaPointerIsValid(e->prev))
		entry_at(e->prev)->next = e->next;
	else
		sv->head = e->next;
	if (DsaPointerIsValid(e->next))
		entry_at(e->next)->prev = e->prev;
	else
		sv->tail = e->prev;
	e->prev = e->next = InvalidDsaPointer;
}

static void
list_push_head(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	e->prev = InvalidDsaPointer;
	e->next = sv->head;
	if (DsaPointerIsValid(sv->head))
		entry_at(sv->head)->prev = dp;
	else
		sv->tail = dp;
	sv->head = dp;
}

static void
list_push_tail(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	e->next = InvalidDsaPointer;
	e->prev = sv->tail;
	if (DsaPointerIsValid(sv->tail))
		entry_at(sv->tail)->next = dp;
	else
		sv->head = dp;
	sv->tail = dp;
}

/* Mark an entry changed: stamp it for the pending flush, move it to the head. */
static void
touch(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	e->seq = sv->pending_seq;
	if (sv->head != dp)
	{
		list_unlink(sv, dp, e);
		list_push_head(sv, dp, e);
	}
}

/* Rehash the groups into newn buckets; keeps the old array if memory is short. */
static void
rehash(SharedView *sv, uint32 newn)
{
	dsa_pointer newdp;
	dsa_pointer *newb;
	dsa_pointer dp;

	newdp = dsa_allocate_extended(area, sizeof(dsa_pointer) * newn,
								  DSA_ALLOC_ZERO | DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
	if (!DsaPointerIsValid(newdp))
		return;					/* longer chains, still correct */
	newb = dsa_get_address(area, newdp);
	for (dp = sv->head; DsaPointerIsValid(dp);)
	{
		StoreEntry *e = entry_at(dp);
		uint32		b = e->hash & (newn - 1);

		e->bucket_next = newb[b];
		newb[b] = dp;
		dp = e->next;
	}
	dsa_free(area, sv->buckets);
	sv->bytes += sizeof(dsa_pointer) * ((int64) newn - (int64) sv->nbuckets);
	sv->buckets = newdp;
	sv->nbuckets = newn;
}

/* Double the bucket array once there are more groups than buckets. */
static void
maybe_grow(SharedView *sv)
{
	if (sv->nentries <= sv->nbuckets || sv->nbuckets >= (1U << 30))
		return;
	rehash(sv, sv->nbuckets * 2);
}

/*
 * Shrink the bucket array once groups left: to twice the groups, when they
 * fill less than a quarter of it.  The array counts in the view's memory.
 */
static void
maybe_shrink(SharedView *sv)
{
	uint32		newn = sv->nbuckets;

	if (sv->nentries >= sv->nbuckets / 4 || sv->nbuckets <= STORE_INITIAL_BUCKETS)
		return;
	while (newn > STORE_INITIAL_BUCKETS && (int64) newn / 2 >= 2 * sv->nentries)
		newn /= 2;
	if (newn < sv->nbuckets)
		rehash(sv, newn);
}

/*
 * StoreFinish writes a prepared block: into a new group (key, gid, tid and
 * changed as StoreAddGroup takes them) or into its existing one, which it
 * marks changed.  Cannot fail.  Returns the group.
 */
dsa_pointer
StoreFinish(SharedView *sv, StoreWrite *w, uint32 hash, const char *key,
			const char *block, int64 gid, ItemPointer tid, bool changed)
{
	dsa_pointer dp = w->entry;
	StoreEntry *e = entry_at(dp);
	bool		live = !AggIsEmpty(&sv->layout, block);
	dsa_pointer *buckets;
	uint32		b;

	if (sv->float_sums)
	{
		bool		was = w->is_new ? (gid != 0 && w->stored_overflowed) :
			AggOverflowed(&sv->layout, ENTRY_BLOCK(e));

		sv->overflowed += (int) AggOverflowed(&sv->layout, block) - (int) was;
	}
	if (!w->is_new)
	{
		apply_block(sv, e, block, w);
		if (live != e->live)
			sv->groups += live ? 1 : -1;
		e->live = live;
		touch(sv, dp, e);
		return dp;
	}

	e->hash = hash;
	e->keylen = w->keylen;
	e->gid = gid;
	if (tid)
		e->tid = *tid;
	else
		ItemPointerSetInvalid(&e->tid);
	memcpy(ENTRY_KEY(e), key, w->keylen);
	apply_block(sv, e, block, w);
	e->live = live;
	sv->bytes += entry_size(sv, w->keylen);
	if (gid == 0 && e->live)
		sv->groups++;

	buckets = bucket_array(sv);
	b = hash & (sv->nbuckets - 1);
	e->bucket_next = buckets[b];
	buckets[b] = dp;
	sv->nentries++;

	if (changed)
	{
		e->seq = sv->pending_seq;
		list_push_head(sv, dp, e);
	}
	else
	{
		e->seq = 0;
		list_push_tail(sv, dp, e);
	}
	maybe_grow(sv);
	return dp;
}

/*
 * StoreAddGroup adds a group.  A group loaded from the state table is not
 * changed (changed = false): it goes to the tail of the recency list and no
 * reader needs it.  Returns InvalidDsaPointer when shared memory is full.
 */
dsa_pointer
StoreAddGroup(SharedView *sv, uint32 hash, const char *key, Size keylen,
			  const char *block, int64 gid, ItemPointer tid, bool changed)
{
	StoreWrite	w;
	dsa_pointer vars[FLOWSTATE_MAX_VARS];

	w.vars = vars;
	w.fresh = false;
	if (!StorePrepare(sv, &w, InvalidDsaPointer, keylen, block))
		return InvalidDsaPointer;
	/* a loaded group is as out of range as its row: counted already */
	w.stored_overflowed = gid != 0 && sv->float_sums && AggOverflowed(&sv->layout, block);
	return StoreFinish(sv, &w, hash, key, block, gid, tid, changed);
}

/*
 * StoreWriteBlock replaces a group's state and marks it changed.  Returns
 * false, changing nothing, when shared memory is full.
 */
bool
StoreWriteBlock(SharedView *sv, dsa_pointer dp, const char *block)
{
	StoreWrite	w;
	dsa_pointer vars[FLOWSTATE_MAX_VARS];

	w.vars = vars;
	w.fresh = false;
	if (!StorePrepare(sv, &w, dp, 0, block))
		return false;
	(void) StoreFinish(sv, &w, 0, NULL, block, 0, NULL, true);
	return true;
}

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

	for (dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
	{
		if (entry_at(dp)->seq != seq)
			break;
		n++;
	}
	out = palloc(sizeof(FlushItem) * Max(n, 1));
	n = 0;
	for (dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
	{
		StoreEntry *e = entry_at(dp);
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
		read_block(sv, ENTRY_BLOCK(e), item->block);
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
				int64 *next_gid, int64 **offsets, int *noffsets)
{
	int			n;
	FlushItem  *out;

	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	/* the stream position the groups are exact at, taken with them */
	*noffsets = sv->noffsets;
	*offsets = NULL;
	if (sv->noffsets > 0)
	{
		*offsets = palloc(sizeof(int64) * sv->noffsets);
		memcpy(*offsets, dsa_get_address(area, sv->offsets), sizeof(int64) * sv->noffsets);
	}
	*seq = sv->pending_seq;
	*truncate = (sv->truncate_seq == *seq);
	if (!*truncate &&
		(!DsaPointerIsValid(sv->head) || entry_at(sv->head)->seq != *seq))
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
			entry_at(items[i].entry)->tid = items[i].tid;
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
		for (dsa_pointer dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
		{
			StoreEntry *e = entry_at(dp);

			if (e->seq < seq)
				break;
			e->seq = sv->pending_seq;
		}
	}
	LWLockRelease(&sv->lock);
}

/* Unlink an entry from its bucket chain. */
static void
bucket_unlink(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	dsa_pointer *link = &bucket_array(sv)[e->hash & (sv->nbuckets - 1)];

	while (DsaPointerIsValid(*link))
	{
		if (*link == dp)
		{
			*link = e->bucket_next;
			return;
		}
		link = &entry_at(*link)->bucket_next;
	}
	elog(ERROR, "flowstate group missing from its bucket");
}

/*
 * StoreSetOffsets records how far a Kafka view's groups go in each
 * partition: next[p] is the next offset of partition p, or -1 where the
 * caller has nothing to say.  Offsets only go forward.  Caller holds the
 * view lock exclusively.
 */
void
StoreSetOffsets(SharedView *sv, const int64 *next, int n)
{
	int64	   *cur;

	if (n > sv->noffsets)
	{
		dsa_pointer dp = dsa_allocate(area, sizeof(int64) * n);
		int64	   *grown = dsa_get_address(area, dp);

		for (int p = 0; p < n; p++)
			grown[p] = -1;
		if (sv->noffsets > 0)
		{
			memcpy(grown, dsa_get_address(area, sv->offsets), sizeof(int64) * sv->noffsets);
			dsa_free(area, sv->offsets);
		}
		sv->offsets = dp;
		sv->bytes += sizeof(int64) * (n - sv->noffsets);
		sv->noffsets = n;
	}
	cur = dsa_get_address(area, sv->offsets);
	for (int p = 0; p < n; p++)
		if (next[p] > cur[p])
			cur[p] = next[p];
}

/*
 * StoreGetOffsets copies a Kafka view's offsets (see StoreSetOffsets) in
 * CurrentMemoryContext; returns their count.  Caller holds the view lock.
 */
int
StoreGetOffsets(SharedView *sv, int64 **next)
{
	*next = NULL;
	if (sv->noffsets == 0)
		return 0;
	*next = palloc(sizeof(int64) * sv->noffsets);
	memcpy(*next, dsa_get_address(area, sv->offsets), sizeof(int64) * sv->noffsets);
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
	if (!IsolationUsesXactSnapshot() && waiting != NULL)
		waiting[MyProc->pgprocno] = true;
}

void
StoreWaitEnd(void)
{
	if (waiting != NULL)
		waiting[MyProc->pgprocno] = false;
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
			(i < store_nprocs() && waiting[i]) ||
			(proc->statusFlags & (PROC_IS_AUTOVACUUM | PROC_IN_VACUUM | PROC_IN_LOGICAL_DECODING)))
			continue;
		xmin = *(volatile TransactionId *) &proc->xmin;
		if (TransactionIdIsNormal(xmin) && TransactionIdPrecedes(xmin, horizon))
			horizon = xmin;
	}
	return horizon;
}

/* Drop groups from the tail, stamped up to max_seq, down to target_bytes. */
static void
evict_tail(SharedView *sv, int64 target_bytes, uint64 max_seq)
{
	while (sv->bytes > target_bytes && DsaPointerIsValid(sv->tail))
	{
		dsa_pointer dp = sv->tail;
		StoreEntry *e = entry_at(dp);

		if (e->seq > max_seq)
			break;
		list_unlink(sv, dp, e);
		bucket_unlink(sv, dp, e);
		sv->evictions++;
		sv->evicted_seq = Max(sv->evicted_seq, e->seq);
		free_vars(sv, e);
		sv->bytes -= entry_size(sv, e->keylen);
		sv->nentries--;
		dsa_free(area, dp);
		sv->complete = false;
	}
	maybe_shrink(sv);
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
	for (dsa_pointer dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
		entry_at(dp)->seq = sv->pending_seq;
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
		StoreEntry *e = entry_at(dp);

		e->tid = items[i].tid;
		e->seq = spill_seq;
		list_unlink(sv, dp, e);
		list_push_tail(sv, dp, e);
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

/*
 * StoreCapture copies, for a reader whose snapshot is given, the groups of
 * a view whose newest state that snapshot does not see in the state table.
 * Returns NULL if the view has no writer.
 */
Capture *
StoreCapture(StoreKey key, Snapshot snapshot)
{
	SharedView *sv = StoreFindView(key);
	uint64		visible;
	Capture    *cap;
	dsa_pointer dp;
	int			n = 0;

	if (sv == NULL)
		return NULL;

	LWLockAcquire(&sv->lock, LW_SHARED);
	if (sv->broken)
	{
		char		message[sizeof(sv->last_error)];

		strlcpy(message, sv->last_error, sizeof(message));
		LWLockRelease(&sv->lock);
		StoreReleaseView(sv);
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("%s", message),
				 errhint("Drop the continuous view with flowstate.drop_view() and create it again.")));
	}
	visible = sv->base_seq;
	for (int i = sv->nflushes - 1; i >= 0; i--)
	{
		TransactionId xid = sv->flushes[i].xid;

		if (TransactionIdIsValid(xid) &&
			!XidInMVCCSnapshot(xid, snapshot) &&
			TransactionIdDidCommit(xid))
		{
			visible = Max(visible, sv->flushes[i].seq);
			break;
		}
	}

	/* a backfill the snapshot does not see: the state table as it was */
	if (sv->backfill_seq > visible)
		visible = PG_UINT64_MAX;

	/* groups left whose flush the snapshot does not see: it cannot be served */
	if (sv->evicted_seq > visible)
	{
		cap = palloc0(sizeof(Capture));
		cap->view_relid = sv->view_relid;
		cap->def_relid = sv->def_relid;
		cap->too_old = true;
		cap->overflowed = 0;
		LWLockRelease(&sv->lock);
		StoreReleaseView(sv);
		return cap;
	}
	for (dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
	{
		if (entry_at(dp)->seq <= visible)
			break;
		n++;
	}

	cap = palloc(sizeof(Capture));
	cap->view_relid = sv->view_relid;
	cap->def_relid = sv->def_relid;
	memcpy(&cap->layout, &sv->layout, sizeof(ViewLayout));
	cap->hide_table = sv->truncate_seq > visible && visible != PG_UINT64_MAX;
	cap->too_old = false;
	cap->overflowed = sv->overflowed;
	cap->gid = palloc(sizeof(int64) * Max(n, 1));
	cap->live = palloc(sizeof(bool) * Max(n, 1));
	cap->key = palloc(sizeof(char *) * Max(n, 1));
	cap->block = palloc(sizeof(char *) * Max(n, 1));
	cap->n = 0;
	for (dp = sv->head; DsaPointerIsValid(dp); dp = entry_at(dp)->next)
	{
		StoreEntry *e = entry_at(dp);
		int			i = cap->n;

		if (e->seq <= visible)
			break;
		if (e->gid == 0 && !e->live)
			continue;			/* never written, gone again */
		cap->gid[i] = e->gid;
		cap->live[i] = e->live;
		cap->key[i] = palloc(e->keylen);
		memcpy(cap->key[i], ENTRY_KEY(e), e->keylen);
		cap->block[i] = palloc(sv->layout.block_size);
		read_block(sv, ENTRY_BLOCK(e), cap->block[i]);
		cap->n++;
	}
	LWLockRelease(&sv->lock);
	StoreReleaseView(sv);
	return cap;
}
