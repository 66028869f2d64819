/*-------------------------------------------------------------------------
 *
 * api.h
 *	  What the SQL functions of continuous views share: the groups a
 *	  reader's snapshot takes from shared memory (reader.c), the workers
 *	  told of a changed catalog (catalog_change.c), histories caught up
 *	  (history.c), the refusal on a standby (api.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_API_H
#define FLOWSTATE_API_H

#include "state/state_store.h"

extern Capture *ApiCapture(Oid state_relid, MemoryContext query_cxt,
						   const uint32 *part_hash);
extern bool ApiCaptureHolds(Capture *cap, int64 gid);
extern int32 ApiCaptureNumber(Capture *cap);
extern Capture *ApiCaptureNumbered(int32 number);
extern void ApiCheckReader(Oid view_relid, Oid state_relid, Oid def_relid);
extern void ApiNoteCatalogChanged(void);
extern bool ApiHistoriesPending(XLogRecPtr lsn, TimestampTz since);
extern bool ApiViewsReadHistories(void);
extern void ApiHistoriesDropped(void);
extern void ApiRefuseOnStandby(const char *function);

#endif							/* FLOWSTATE_API_H */
