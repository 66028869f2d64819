/*-------------------------------------------------------------------------
 *
 * backfill.h
 *	  Reading source tables under a snapshot synchronised with the decoding
 *	  position: backfill of new views, recompute of stale groups.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_BACKFILL_H
#define FLOWSTATE_BACKFILL_H

#include "engine/snapshot.h"

struct ViewRuntime;
struct LocalGroup;

extern void BackfillScan(struct ViewRuntime *vr, SyncSnapshot *snap);
extern void BackfillRecompute(struct ViewRuntime *vr, struct LocalGroup **groups,
							  int ngroups, SyncSnapshot *snap, int snapno);

#endif							/* FLOWSTATE_BACKFILL_H */
