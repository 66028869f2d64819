/*-------------------------------------------------------------------------
 *
 * multiset.h
 *	  Continuous views with aggregates over the multiset of a value.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_MULTISET_H
#define FLOWSTATE_MULTISET_H

#include "nodes/parsenodes.h"

/* A defining query with aggregates over a value's multiset (MultisetFind). */
typedef struct MultisetSpec
{
	Node	   *value;			/* the aggregates' argument, over the source */
	List	   *keys;			/* the GROUP BY expressions */
	List	   *aggrefs;		/* every aggregate of the query */
} MultisetSpec;

extern bool MultisetAggregates(Query *query);
struct HopSpec;

extern bool MultisetFind(Query *query, bool windows, MultisetSpec *spec);
extern Oid	MultisetCreateView(Oid nspid, const char *name, Query *query, MultisetSpec *spec,
							   const struct HopSpec *hop,
							   Datum watermark_delay, bool delay_null,
							   Datum allowed_lateness, bool lateness_null,
							   Datum memory_limit, bool limit_null,
							   Datum retention, bool retention_null);

#endif							/* FLOWSTATE_MULTISET_H */
