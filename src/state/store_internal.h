/*-------------------------------------------------------------------------
 *
 * store_internal.h
 *	  What the files of the store in shared memory share (state_store.c,
 *	  flushes.c, capture.c); nothing else includes it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_STORE_INTERNAL_H
#define FLOWSTATE_STORE_INTERNAL_H

#include "lib/dshash.h"
#include "utils/dsa.h"

#include "state/state_store.h"

/* the server's area and table of views, attached by store_attach */
extern dsa_area *store_area;
extern dshash_table *store_views;

/* per PGPROC: the backend waits in flowstate.wait_for() (StoreHorizon) */
extern bool *store_waiting;

static inline StoreEntry *
store_entry_at(dsa_pointer dp)
{
	return (StoreEntry *) dsa_get_address(store_area, dp);
}

static inline dsa_pointer *
store_bucket_array(SharedView *sv)
{
	return (dsa_pointer *) dsa_get_address(store_area, sv->buckets);
}

/*
 * The dsa_pointer of var field i in a packed block (AggPack), unaligned;
 * a var field the packed form does not keep (a delta's) is always invalid.
 */
static inline dsa_pointer
shared_var(SharedView *sv, const char *shared, int i)
{
	dsa_pointer vp = InvalidDsaPointer;

	if (sv->layout.var_shared[i] >= 0)
		memcpy(&vp, shared + sv->layout.var_shared[i], sizeof(vp));
	return vp;
}

static inline void
set_shared_var(SharedView *sv, char *shared, int i, dsa_pointer vp)
{
	if (sv->layout.var_shared[i] >= 0)
		memcpy(shared + sv->layout.var_shared[i], &vp, sizeof(vp));
	else
		Assert(!DsaPointerIsValid(vp));
}

/*
 * The heads of the chains of keys but the window (views with part_index)
 * follow the n buckets of a bucket array: an eighth as many, since a key
 * has as many groups as windows.  Chains are told apart by part_hash.
 */
#define STORE_PART_HEADS(n)	((n) / 8)

static inline uint32
store_part_slot(uint32 n, uint32 part_hash)
{
	return n + (part_hash & (STORE_PART_HEADS(n) - 1));
}

extern int	store_nprocs(void);
extern void store_attach(void);
extern Size store_entry_size(SharedView *sv, Size keylen);
extern void store_free_vars(SharedView *sv, StoreEntry *e);
extern void store_read_block(SharedView *sv, const char *shared, char *block);
extern void store_list_unlink(SharedView *sv, dsa_pointer dp, StoreEntry *e);
extern void store_list_push_tail(SharedView *sv, dsa_pointer dp, StoreEntry *e);
extern void store_maybe_shrink(SharedView *sv);

#endif							/* FLOWSTATE_STORE_INTERNAL_H */
