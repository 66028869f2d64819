/*-------------------------------------------------------------------------
 *
 * panes.h
 *	  The panes of the continuous views of hopping, cumulating and session
 *	  windows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_PANES_H
#define FLOWSTATE_PANES_H

#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"

extern char *PanesIntervalLiteral(int64 us);
extern Oid	PanesCreate(Oid nspid, const char *name, const char *suffix, const char *kind,
						const char *select_list, RangeTblEntry *src, List *src_cxt, Node *quals,
						const char *group_by, Datum watermark_delay, bool delay_null,
						Datum allowed_lateness, bool lateness_null, Datum memory_limit,
						bool limit_null, Datum retention, bool retention_null);
extern char *PanesKeyList(const char *prefix, int n, bool comma);
extern void PanesTargets(List *target_list, Node *(*mutator) (Node *node, void *context),
						 void *context, List *panes_cxt, StringInfo targets, StringInfo exprs);
extern Oid	PanesCreateView(Oid nspid, const char *name, const char *targets,
							const char *windows, const char *having, const char *kept);
extern char *PanesKeptSql(Oid panes_relid, const char *end, Oid window_type,
						  int64 delay_us, int64 retention_us);
extern Oid	PanesFinalFunction(Oid nspid, const char *name, Oid view_relid, Oid window_type,
							   const char *windows, const char *exprs, const char *start,
							   const char *end, const char *final, const char *having);

#endif							/* FLOWSTATE_PANES_H */
