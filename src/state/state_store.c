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
 * This file holds the area, the views and their groups; flushes.c the
 * flush sequencing, eviction and backfill spills, capture.c the readers'
 * copies.  All three follow the protocol below (store_internal.h shares
 * what they have in common).
 *
 * In a view with a window and other keys that compare by their bytes
 * (part_index), each group is also chained by the hash of its keys but the
 * window (part_hash, part_next; heads after the buckets, an eighth as many), so
 * that a reader of one key's windows copies those groups only
 * (StoreCapture with a part hash).  The chains change with the groups,
 * under the same lock.
 *
 * Locking protocol
 *
 *	- The dshash table of views has its own partition locks.  A reader holds
 *	  its view's partition lock (shared) for the whole of a capture; a view
 *	  is deleted only through dshash, with that lock exclusive, so it cannot
 *	  vanish under a reader.  Registering a view (re)initialises it under the
 *	  exclusive partition lock.
 *	- SharedView.lock guards every other field of a SharedView and every
 *	  StoreEntry (its chains included) and var chunk of the view.  The view's writer (the decoding
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

#include "access/twophase.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "utils/memutils.h"

#include "aggregates/aggregate.h"
#include "state/state_store.h"
#include "state/store_internal.h"

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
bool *store_waiting = NULL;
dsa_area *store_area = NULL;
dshash_table *store_views = NULL;

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
int
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

	store_waiting = ShmemInitStruct("flowstate waiters", sizeof(bool) * store_nprocs(), &found);
	if (!found)
		memset(store_waiting, 0, sizeof(bool) * store_nprocs());
	control = ShmemInitStruct("flowstate store",
							  add_size(offsetof(StoreControl, area_space), STORE_INITIAL_SIZE),
							  &found);
	if (found)
		return;

	control->area_tranche = LWLockNewTrancheId();
	control->view_tranche = LWLockNewTrancheId();
	store_area = dsa_create_in_place(control->area_space, STORE_INITIAL_SIZE,
							   control->area_tranche, NULL);
	dsa_pin(store_area);

	/* keep the table of views in the main shared memory */
	dsa_set_size_limit(store_area, STORE_INITIAL_SIZE);
	views_params.tranche_id = control->view_tranche;
	store_views = dshash_create(store_area, &views_params, NULL);
	control->views_handle = dshash_get_hash_table_handle(store_views);
	dsa_set_size_limit(store_area, -1);

	dshash_detach(store_views);
	dsa_detach(store_area);
	store_views = NULL;
	store_area = NULL;
}

static void
store_detach(int code, Datum arg)
{
	if (store_views)
		dshash_detach(store_views);
	if (store_area)
	{
		dsa_detach(store_area);
		dsa_release_in_place(control->area_space);
	}
	store_views = NULL;
	store_area = NULL;
}

/* Attach this process to the store, once. */
void
store_attach(void)
{
	MemoryContext oldcxt;

	if (store_area != NULL)
		return;

	LWLockRegisterTranche(control->area_tranche, "flowstate store");
	LWLockRegisterTranche(control->view_tranche, "flowstate view");

	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	store_area = dsa_attach_in_place(control->area_space, NULL);
	dsa_pin_mapping(store_area);
	views_params.tranche_id = control->view_tranche;
	store_views = dshash_attach(store_area, &views_params, control->views_handle, NULL);
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
	return store_area;
}

/* The slots of a bucket array of n chains (and the heads of part chains). */
static inline Size
bucket_slots(SharedView *sv, uint32 n)
{
	return (Size) n + (sv->part_index ? STORE_PART_HEADS(n) : 0);
}

/* Link a new entry into the chain of its keys but the window. */
static void
part_link(SharedView *sv, dsa_pointer dp, StoreEntry *e, dsa_pointer *buckets, uint32 n)
{
	dsa_pointer *chain = &buckets[store_part_slot(n, e->part_hash)];

	e->part_next = *chain;
	e->part_prev = InvalidDsaPointer;
	if (DsaPointerIsValid(*chain))
		store_entry_at(*chain)->part_prev = dp;
	*chain = dp;
}

Size
store_entry_size(SharedView *sv, Size keylen)
{
	return offsetof(StoreEntry, data) + keylen + sv->layout.shared_size;
}

/* Free the var chunks of an entry's block. */
void
store_free_vars(SharedView *sv, StoreEntry *e)
{
	char	   *block = ENTRY_BLOCK(e);

	for (int i = 0; i < sv->layout.nvars; i++)
	{
		dsa_pointer vp = shared_var(sv, block, i);

		if (DsaPointerIsValid(vp))
		{
			VarChunk   *c = dsa_get_address(store_area, vp);

			sv->bytes -= offsetof(VarChunk, data) + c->capacity;
			dsa_free(store_area, vp);
			set_shared_var(sv, block, i, InvalidDsaPointer);
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
		StoreEntry *e = store_entry_at(dp);
		dsa_pointer next = e->next;

		store_free_vars(sv, e);
		dsa_free(store_area, dp);
		dp = next;
	}
	if (DsaPointerIsValid(sv->buckets))
		dsa_free(store_area, sv->buckets);
	if (DsaPointerIsValid(sv->offsets))
		dsa_free(store_area, sv->offsets);
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
 * Flush numbers keep increasing across writers.  stream says the view is
 * fed by a Kafka stream, whose owner keeps it (StoreForgetDatabase).
 */
SharedView *
StoreRegisterView(StoreKey key, int32 view_id, Oid view_relid, Oid def_relid,
				  const ViewLayout *layout,
				  int64 memory_limit, bool stream)
{
	SharedView *sv;
	bool		found;
	uint64		seq = 1;

	store_attach();
	sv = dshash_find_or_insert(store_views, &key, &found);
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
	sv->stream = stream;
	sv->evictions = 0;
	sv->pressed_out = false;
	sv->stream_workers = 0;
	for (int i = 0; i < STORE_MAX_STREAM_WORKERS; i++)
		sv->judged[i] = PG_INT64_MIN;

	sv->view_id = view_id;
	sv->view_relid = view_relid;
	sv->def_relid = def_relid;
	sv->status = VIEW_STARTING;
	sv->writer_pid = MyProcPid;
	memcpy(&sv->layout, layout, sizeof(ViewLayout));
	sv->part_index = GroupKeyPartIndexable(layout);
	sv->buckets = dsa_allocate_extended(store_area, sizeof(dsa_pointer) *
										bucket_slots(sv, STORE_INITIAL_BUCKETS),
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
	sv->bytes = sizeof(dsa_pointer) * bucket_slots(sv, STORE_INITIAL_BUCKETS);
	sv->memory_limit = memory_limit;
	sv->groups = 0;
	sv->can_overflow = AggCanOverflow(layout);
	sv->overflowed = 0;
	sv->rows_applied = sv->late_rows = sv->failed_rows = sv->recomputed = 0;
	sv->rows_per_second = 0;
	sv->applied_lsn = InvalidXLogRecPtr;
	sv->sides_lsn = InvalidXLogRecPtr;
	sv->sides_wanted = false;
	sv->paused = false;
	sv->has_watermark = false;
	sv->watermark = 0;
	/* (a new entry's memory is whatever the area held there before) */
	sv->has_durable_max_ts = false;
	sv->durable_max_ts = 0;
	sv->backfill_rows = sv->backfill_total = 0;
	sv->flush_count = 0;
	sv->last_flush_at = 0;
	sv->broken = false;
	sv->last_error[0] = '\0';
	dshash_release_lock(store_views, sv);
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

	sv = dshash_find(store_views, &key, true);
	if (sv == NULL)
		return;
	free_groups(sv);
	dshash_delete_entry(store_views, sv);
}

/*
 * StoreForgetDatabase deletes every view of a database that decoding feeds:
 * a decoding worker that starts owns none yet.  The views of the
 * database's streams stay: their owners keep pointers to them.
 */
void
StoreForgetDatabase(Oid dboid)
{
	dshash_seq_status status;
	SharedView *sv;

	store_attach();
	dshash_seq_init(&status, store_views, true);
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
	dshash_seq_init(&status, store_views, false);
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
	return dshash_find(store_views, &key, false);
}

void
StoreReleaseView(SharedView *sv)
{
	dshash_release_lock(store_views, sv);
}

/*
 * StoreLookup finds the group of a key (values detoasted), or returns
 * InvalidDsaPointer.
 */
dsa_pointer
StoreLookup(SharedView *sv, const GroupKeys *gk, uint32 hash,
			const Datum *values, const bool *isnull)
{
	dsa_pointer dp = store_bucket_array(sv)[hash & (sv->nbuckets - 1)];

	while (DsaPointerIsValid(dp))
	{
		StoreEntry *e = store_entry_at(dp);

		if (e->hash == hash && GroupKeyMatches(gk, ENTRY_KEY(e), values, isnull))
			return dp;
		dp = e->bucket_next;
	}
	return InvalidDsaPointer;
}

StoreEntry *
StoreEntryGet(SharedView *sv, dsa_pointer dp)
{
	return store_entry_at(dp);
}

/*
 * Unpack a shared block into a local one (AggUnpack); var fields into
 * CurrentMemoryContext.
 */
void
store_read_block(SharedView *sv, const char *shared, char *block)
{
	AggUnpack(&sv->layout, shared, block);
	for (int i = 0; i < sv->layout.nvars; i++)
	{
		int32		off = sv->layout.var_offsets[i];
		dsa_pointer vp = shared_var(sv, shared, i);
		char	   *copy = NULL;

		if (DsaPointerIsValid(vp))
		{
			VarChunk   *c = dsa_get_address(store_area, vp);
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
	store_read_block(sv, ENTRY_BLOCK(store_entry_at(dp)), block);
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
		w->entry = dsa_allocate_extended(store_area, store_entry_size(sv, keylen),
										 DSA_ALLOC_ZERO | DSA_ALLOC_NO_OOM);
		if (!DsaPointerIsValid(w->entry))
			return false;
	}
	else if (!w->fresh)
		shared = ENTRY_BLOCK(store_entry_at(dp));

	for (int i = 0; i < sv->layout.nvars; i++)
	{
		int32		off = sv->layout.var_offsets[i];
		char	   *val = DatumGetPointer(*(Datum *) (block + off));
		dsa_pointer old = InvalidDsaPointer;
		Size		len;

		if (shared)
			old = shared_var(sv, shared, i);
		w->vars[i] = InvalidDsaPointer;
		/* a state has no deleted values, which the packed form drops */
		Assert(val == NULL || sv->layout.var_shared[i] >= 0);
		if (val == NULL || sv->layout.var_shared[i] < 0)
			continue;
		len = VARSIZE_ANY(val);
		if (DsaPointerIsValid(old) &&
			((VarChunk *) dsa_get_address(store_area, old))->capacity >= len)
		{
			w->vars[i] = old;
			continue;
		}
		w->vars[i] = dsa_allocate_extended(store_area, offsetof(VarChunk, data) + len + len / 2,
										   DSA_ALLOC_NO_OOM);
		if (!DsaPointerIsValid(w->vars[i]))
		{
			StoreCancel(sv, w, i);
			return false;
		}
		((VarChunk *) dsa_get_address(store_area, w->vars[i]))->capacity = len + len / 2;
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
	char	   *shared = w->is_new || w->fresh ? NULL : ENTRY_BLOCK(store_entry_at(w->entry));

	for (int j = 0; j < nvars; j++)
	{
		dsa_pointer old = InvalidDsaPointer;

		if (shared)
			old = shared_var(sv, shared, j);
		if (DsaPointerIsValid(w->vars[j]) && w->vars[j] != old)
			dsa_free(store_area, w->vars[j]);
	}
	if (w->is_new)
		dsa_free(store_area, w->entry);
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
			old = shared_var(sv, shared, i);
		if (DsaPointerIsValid(old) && old != w->vars[i])
		{
			sv->bytes -= offsetof(VarChunk, data) +
				((VarChunk *) dsa_get_address(store_area, old))->capacity;
			dsa_free(store_area, old);
		}
		if (DsaPointerIsValid(w->vars[i]) && w->vars[i] != old)
			sv->bytes += offsetof(VarChunk, data) +
				((VarChunk *) dsa_get_address(store_area, w->vars[i]))->capacity;
		if (val != NULL && DsaPointerIsValid(w->vars[i]))
			memcpy(((VarChunk *) dsa_get_address(store_area, w->vars[i]))->data, val,
				   VARSIZE_ANY(val));
	}

	AggPack(&sv->layout, block, shared);
	for (int i = 0; i < sv->layout.nvars; i++)
		set_shared_var(sv, shared, i, w->vars[i]);
}

void
store_list_unlink(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	if (DsaPointerIsValid(e->prev))
		store_entry_at(e->prev)->next = e->next;
	else
		sv->head = e->next;
	if (DsaPointerIsValid(e->next))
		store_entry_at(e->next)->prev = e->prev;
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
		store_entry_at(sv->head)->prev = dp;
	else
		sv->tail = dp;
	sv->head = dp;
}

void
store_list_push_tail(SharedView *sv, dsa_pointer dp, StoreEntry *e)
{
	e->next = InvalidDsaPointer;
	e->prev = sv->tail;
	if (DsaPointerIsValid(sv->tail))
		store_entry_at(sv->tail)->next = dp;
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
		store_list_unlink(sv, dp, e);
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

	newdp = dsa_allocate_extended(store_area, sizeof(dsa_pointer) * bucket_slots(sv, newn),
								  DSA_ALLOC_ZERO | DSA_ALLOC_NO_OOM | DSA_ALLOC_HUGE);
	if (!DsaPointerIsValid(newdp))
		return;					/* longer chains, still correct */
	newb = dsa_get_address(store_area, newdp);
	for (dp = sv->head; DsaPointerIsValid(dp);)
	{
		StoreEntry *e = store_entry_at(dp);
		uint32		b = e->hash & (newn - 1);

		e->bucket_next = newb[b];
		newb[b] = dp;
		if (sv->part_index)
			part_link(sv, dp, e, newb, newn);
		dp = e->next;
	}
	dsa_free(store_area, sv->buckets);
	sv->bytes += sizeof(dsa_pointer) *
		((int64) bucket_slots(sv, newn) - (int64) bucket_slots(sv, sv->nbuckets));
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
void
store_maybe_shrink(SharedView *sv)
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
	StoreEntry *e = store_entry_at(dp);
	bool		live = !AggIsEmpty(&sv->layout, block);
	dsa_pointer *buckets;
	uint32		b;

	if (sv->can_overflow)
	{
		bool		was = w->is_new ? (gid != 0 && w->stored_overflowed) : e->overflowed;

		e->overflowed = AggOverflowed(&sv->layout, block);
		sv->overflowed += (int) e->overflowed - (int) was;
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
	sv->bytes += store_entry_size(sv, w->keylen);
	if (gid == 0 && e->live)
		sv->groups++;

	buckets = store_bucket_array(sv);
	b = hash & (sv->nbuckets - 1);
	e->bucket_next = buckets[b];
	buckets[b] = dp;
	if (sv->part_index)
	{
		Datum		values[FLOWSTATE_MAX_KEYS];
		bool		isnull[FLOWSTATE_MAX_KEYS];

		GroupKeyRead(&sv->layout, ENTRY_KEY(e), values, isnull);
		e->part_hash = GroupKeyPartHash(&sv->layout, values, isnull);
		part_link(sv, dp, e, buckets, sv->nbuckets);
	}
	sv->nentries++;

	if (changed)
	{
		e->seq = sv->pending_seq;
		list_push_head(sv, dp, e);
	}
	else
	{
		e->seq = 0;
		store_list_push_tail(sv, dp, e);
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
	w.stored_overflowed = gid != 0 && sv->can_overflow && AggOverflowed(&sv->layout, block);
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

