/*-------------------------------------------------------------------------
 *
 * hop.h
 *	  Hopping windows: flowstate.hop() and the continuous views over it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_HOP_H
#define FLOWSTATE_HOP_H

#include "nodes/parsenodes.h"
#include "utils/timestamp.h"

/* A defining query of the hopping shape (HopFind). */
typedef struct HopSpec
{
	Node	   *ts_expr;		/* the event time, over the source */
	Interval   *size;
	Interval   *slide;
	int64		size_us;
	int64		slide_us;
	int64		pane_us;		/* their greatest common divisor */
} HopSpec;

extern void HopLengths(Interval *size, Interval *slide, int64 *size_us, int64 *slide_us);
extern bool HopFind(Query *query, HopSpec *hop);
extern Oid	HopCreateView(Oid nspid, const char *name, Query *query, HopSpec *hop,
						  Datum watermark_delay, bool delay_null,
						  Datum memory_limit, bool limit_null);
extern Oid	HopViewPanes(Oid relid);

#endif							/* FLOWSTATE_HOP_H */
