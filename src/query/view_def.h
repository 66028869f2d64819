/*-------------------------------------------------------------------------
 *
 * view_def.h
 *	  A continuous view as a worker knows it: its catalog entry
 *	  (fs_catalog/catalog.c) and what the analysis of its defining query
 *	  found (query.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_VIEW_DEF_H
#define FLOWSTATE_VIEW_DEF_H

#include "datatype/timestamp.h"
#include "nodes/parsenodes.h"

#include "aggregates/layout.h"

/* A tumbling window found among the GROUP BY expressions. */
typedef struct WindowSpec
{
	bool		present;
	int			keyno;			/* the key that holds the window start */
	Node	   *ts_expr;		/* the event time it is computed from */
	Interval   *size;			/* the window length */
	int64		size_us;		/* the same in microseconds, 0 if not fixed */
	bool		range_ok;		/* the window is [start, start + size) of ts */
	/* the panes of a view of hopping, cumulating or session windows */
	char		panes_of;		/* 'h', 'c', 's' (catalog hop_kind), or 0 */
	int64		panes_of_size_us;	/* their size, largest size or gap */
	int64		hop_slide_us;	/* their slide, step or gap */
} WindowSpec;

/*
 * The join of the source to a dimension table (query/join.c): each row of
 * the source is matched, by the value of an expression of its own, to the
 * rows of the dimension whose key column equals it (through a btree index
 * on that column), then by the rest of the ON clause: at most one row
 * matches (a unique key, or the range of a history's versions).
 */
typedef struct JoinSpec
{
	bool		present;
	bool		outer;			/* LEFT JOIN: a row without a match is kept,
								 * the dimension's columns null */
	bool		temporal;		/* the dimension is a history, matched by the
								 * range of its versions */
	Index		rti;			/* the dimension's range table index */
	Oid			relid;
	AttrNumber	keycol;			/* its key column */
	Oid			index;			/* a btree index led by keycol */
	Oid			eq_opno;		/* keycol = value, as the index compares */
	Oid			eq_func;		/* its function */
	Oid			value_type;
	Oid			collation;
	Expr	   *value;			/* over the source */
	Expr	   *quals;			/* the rest of ON, implicit AND; NULL if none */
	/* a table source: value is its column fact_col, found by fact_opno */
	AttrNumber	fact_col;
	Oid			fact_opno;		/* fact_col = key value */
} JoinSpec;

typedef struct ViewDef
{
	MemoryContext cxt;			/* holds it and what the worker derives from it */

	/* catalog (flowstate.view) */
	int32		view_id;
	char	   *view_name;		/* qualified, for messages */
	Oid			view_relid;
	Oid			def_relid;
	Oid			state_relid;
	Oid			source_relid;
	Oid			owner;			/* the view's owner: what it evaluates runs as */
	bool		stream;			/* the source is a Kafka stream */
	int64		idle_timeout_us;	/* the stream's: a partition without
									 * messages this long leaves the
									 * watermark; -1: none does */
	int64		watermark_delay_us;
	int64		allowed_lateness_us;	/* -1: never late */
	int64		memory_limit;	/* bytes, 0: flowstate.memory_limit */
	bool		backfilling;
	bool		has_max_event_time; /* max_event_time is known */
	TimestampTz max_event_time; /* largest event time as of the last flush */
	bool		has_final_event_time;	/* streams: final_event_time is known */
	TimestampTz final_event_time;	/* streams: the event time every worker
									 * judged with at the last flush: its
									 * windows final were announced */
	int64		retention_us;	/* windows that ended longer ago leave, -1: kept */
	bool		notify;			/* a NOTIFY on channel per window made final */
	char	   *channel;		/* schema.name of the view */
	Oid			changelog_relid;	/* rows of windows made final go there */
	Oid			final_function; /* panes: the rows of the windows of their
								 * view whose end is in ($1, $2] (notify,
								 * changelog), or InvalidOid */
	char	   *time_zone;		/* TimeZone its expressions are evaluated in;
								 * NULL: the worker's (views before 0.6.0) */

	/* from the defining query */
	Query	   *query;
	Index		source_rti;
	Expr	   *where;			/* NULL if none */
	List	   *key_exprs;		/* Expr per group key */
	List	   *aggrefs;		/* Aggref per distinct aggregate call */
	ViewLayout	layout;
	WindowSpec	window;
	JoinSpec	join;
} ViewDef;

/*
 * WindowFloor: the start of the window of length us, counted from the Unix
 * epoch (where windows are aligned), that holds the timestamp ts; us > 0.
 */
static inline int64
WindowFloor(int64 ts, int64 us)
{
	int64		epoch = (int64) (UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY;
	int64		rel = ts - epoch;

	return rel - (((rel % us) + us) % us) + epoch;
}

/*
 * ViewFinalCutoff: given limit, the watermark minus allowed_lateness, the
 * largest start of the view's windows that are final: a window is final
 * once the earliest window holding its rows ends at or before limit.  For
 * a tumbling window that is the window itself: start + size <= limit.  For
 * the panes of hopping windows of hop_size every hop_slide, the earliest
 * window holding pane p starts at the first multiple of hop_slide at or
 * after p + pane - hop_size; it ends at or before limit while p is at most
 * floor(limit - hop_size, hop_slide) + hop_size - pane.  (A cumulating
 * window's earliest window holding a pane ends with it: tumbling.)
 */
static inline int64
ViewFinalCutoff(const ViewDef *def, int64 limit)
{
	const WindowSpec *w = &def->window;

	if (w->panes_of == 'h' && w->hop_slide_us > 0)
		return WindowFloor(limit - w->panes_of_size_us, w->hop_slide_us) + w->panes_of_size_us -
			w->size_us;
	return limit - w->size_us;
}

/*
 * ViewExpireCutoff: given limit, the watermark minus retention, the largest
 * start of the view's windows whose rows go (retention): those of windows
 * that ended at or before limit.  For a tumbling window, start + size <=
 * limit.  The panes of hopping windows go once the latest window holding
 * them, which starts at most at the pane, ended: p + hop_size + pane <=
 * limit, so that no window still shown lacks one.  Those of cumulating
 * windows go with the cumulating period that holds them: once its largest
 * window ended.
 */
static inline int64
ViewExpireCutoff(const ViewDef *def, int64 limit)
{
	const WindowSpec *w = &def->window;

	if (w->panes_of == 'h')
		return limit - w->panes_of_size_us - w->size_us;
	if (w->panes_of == 'c')
		return WindowFloor(limit, w->panes_of_size_us) - w->size_us;
	/* (sessions go whole: StateTableExpireSessions; this bounds their panes) */
	return limit - w->size_us;
}

#endif							/* FLOWSTATE_VIEW_DEF_H */
