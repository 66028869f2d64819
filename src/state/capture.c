/*-------------------------------------------------------------------------
 *
 * capture.c
 *	  What readers copy out of shared memory: the groups of a view whose
 *	  newest state their snapshot does not see in the state table (the
 *	  rules are in state_store.c's banner, which states the locking
 *	  protocol too).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/snapmgr.h"

#include "state/state_store.h"
#include "state/store_internal.h"

/*
 * StoreViewLayout copies the layout of a view that has a writer; false if
 * it has none.
 */
bool
StoreViewLayout(StoreKey key, ViewLayout *layout)
{
	SharedView *sv = StoreFindView(key);

	if (sv == NULL)
		return false;
	memcpy(layout, &sv->layout, sizeof(ViewLayout));
	StoreReleaseView(sv);
	return true;
}

/* The next group a capture looks at: by recency, or along a part chain. */
static inline dsa_pointer
next_captured(dsa_pointer dp, const uint32 *part_hash)
{
	return part_hash == NULL ? store_entry_at(dp)->next : store_entry_at(dp)->part_next;
}

/*
 * StoreCapture copies, for a reader whose snapshot is given, the groups of
 * a view whose newest state that snapshot does not see in the state table;
 * with part_hash, of a view with part_index, only those whose keys but the
 * window hash to it (GroupKeyPartHash), found along their chain: a read of
 * one key's windows copies those, not every group.  Returns NULL if the
 * view has no writer.
 */
Capture *
StoreCapture(StoreKey key, Snapshot snapshot, const uint32 *part_hash)
{
	SharedView *sv = StoreFindView(key);
	uint64		visible;
	Capture    *cap;
	dsa_pointer dp;
	dsa_pointer first;
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
	first = sv->head;
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
	if (part_hash != NULL && !sv->part_index)
		part_hash = NULL;
	if (part_hash != NULL)
		first = store_bucket_array(sv)[store_part_slot(sv->nbuckets, *part_hash)];
	for (dp = first; DsaPointerIsValid(dp); dp = next_captured(dp, part_hash))
	{
		if (store_entry_at(dp)->seq <= visible)
		{
			if (part_hash == NULL)
				break;
			continue;
		}
		n++;
	}

	cap = palloc(sizeof(Capture));
	cap->view_relid = sv->view_relid;
	cap->def_relid = sv->def_relid;
	memcpy(&cap->layout, &sv->layout, sizeof(ViewLayout));
	cap->hide_table = sv->truncate_seq > visible && visible != PG_UINT64_MAX;
	cap->too_old = false;
	cap->partial = (part_hash != NULL);
	cap->overflowed = sv->overflowed;
	cap->gid = palloc(sizeof(int64) * Max(n, 1));
	cap->live = palloc(sizeof(bool) * Max(n, 1));
	cap->key = palloc(sizeof(char *) * Max(n, 1));
	cap->block = palloc(sizeof(char *) * Max(n, 1));
	cap->n = 0;
	for (dp = first; DsaPointerIsValid(dp); dp = next_captured(dp, part_hash))
	{
		StoreEntry *e = store_entry_at(dp);
		int			i = cap->n;

		if (e->seq <= visible)
		{
			if (part_hash == NULL)
				break;
			continue;
		}
		if (part_hash != NULL && e->part_hash != *part_hash)
			continue;
		if (e->gid == 0 && !e->live)
			continue;			/* never written, gone again */
		cap->gid[i] = e->gid;
		cap->live[i] = e->live;
		cap->key[i] = palloc(e->keylen);
		memcpy(cap->key[i], ENTRY_KEY(e), e->keylen);
		cap->block[i] = palloc(sv->layout.block_size);
		store_read_block(sv, ENTRY_BLOCK(e), cap->block[i]);
		cap->n++;
	}
	LWLockRelease(&sv->lock);
	StoreReleaseView(sv);
	return cap;
}
