/*-------------------------------------------------------------------------
 *
 * hop.h
 *	  Hopping and cumulating windows: flowstate.hop(), flowstate.cumulate()
 *	  and the continuous views over them.
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
	bool		cumulate;		/* flowstate.cumulate: slide is its step, size
								 * its largest size */
} HopSpec;

extern int64 WindowLength(Interval *iv, const char *name);
extern void HopLengths(Interval *size, Interval *slide, int64 *size_us, int64 *slide_us);
extern void CumulateLengths(Interval *step, Interval *max_size, int64 *step_us, int64 *max_us);
extern bool HopFind(Query *query, HopSpec *hop);
extern Oid	HopCreateView(Oid nspid, const char *name, Query *query, HopSpec *hop,
						  Datum watermark_delay, bool delay_null,
						  Datum allowed_lateness, bool lateness_null,
						  Datum memory_limit, bool limit_null,
						  int64 retention_us, Oid *final_function);
extern Oid	HopViewPanes(Oid relid);

#endif							/* FLOWSTATE_HOP_H */
