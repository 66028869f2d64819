/*-------------------------------------------------------------------------
 *
 * session.h
 *	  Session windows: flowstate.session() and the continuous views over
 *	  them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_SESSION_H
#define FLOWSTATE_SESSION_H

#include "nodes/parsenodes.h"
#include "utils/timestamp.h"

/* A defining query of the session shape (SessionFind). */
typedef struct SessionSpec
{
	Query	   *inner;			/* the subquery that numbers the sessions */
	Node	   *ts_expr;		/* the event time, over the source */
	Interval   *gap;
	int64		gap_us;
	AttrNumber	session_attno;	/* the session's column in the subquery */
	List	   *keys;			/* PARTITION BY expressions, over the source */
	List	   *key_attnos;		/* their columns in the subquery (0: none) */
} SessionSpec;

extern bool SessionFind(Query *query, SessionSpec *session);
extern Oid	SessionCreateView(Oid nspid, const char *name, Query *query, SessionSpec *session,
							  Datum watermark_delay, bool delay_null,
							  Datum allowed_lateness, bool lateness_null,
							  Datum memory_limit, bool limit_null, int64 retention_us,
							  Oid *final_function);

#endif							/* FLOWSTATE_SESSION_H */
