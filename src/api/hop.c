/*-------------------------------------------------------------------------
 *
 * hop.c
 *	  Hopping windows: flowstate.hop(), the windows that hold an instant,
 *	  and the continuous views grouped by them.
 *
 * flowstate.hop(ts, size, slide) returns the windows of length size that
 * start every slide (from the Unix epoch, as flowstate.tumble) and hold ts:
 * those starting at s, a multiple of slide, with s <= ts < s + size.
 * flowstate.cumulate(ts, step, max_size) returns the cumulating windows that
 * hold ts: all start at s, the multiple of max_size at or before ts, and
 * end at s + step, s + 2 step, ... s + max_size.  Both are ordinary
 * immutable set-returning functions, so a defining query
 *
 *	SELECT w.window_start, w.window_end, k, count(*)
 *	  FROM src, LATERAL flowstate.hop(src.ts, '10 minutes', '1 minute') w
 *	 GROUP BY w.window_start, w.window_end, k
 *
 * runs as a batch query unchanged, and is the view's oracle.
 *
 * A continuous view of such a query (HopCreateView) keeps its state per
 * pane: the tumbling windows of the greatest common divisor of size and
 * slide (of step, for cumulating windows), each of which lies in the same
 * windows whole.  The panes are an
 * ordinary continuous view, <name>_panes, of the same keys and aggregates
 * grouped by flowstate.tumble(ts, pane), so that memory does not grow with
 * size / slide and a row changes one group.  The view <name> users read
 * combines, per window, the partial states of its panes
 * (flowstate.partial_states, flowstate.combine, flowstate.finalize) and
 * computes the defining query's columns and HAVING over them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "api/hop.h"
#include "api/panes.h"
#include "query/query.h"

extern PGDLLEXPORT Datum flowstate_hop(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_hop);

/* A length of windows in microseconds; refuses what cannot be one. */
int64
WindowLength(Interval *iv, const char *name)
{
	int64		us;

	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s cannot be given in months or years", name),
				 errhint("Give it in days, hours, minutes or seconds.")));
	us = iv->day * USECS_PER_DAY + iv->time;
	if (us <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s must be positive", name),
				 errhint("Give an interval such as '1 minute'.")));
	return us;
}

/*
 * HopLengths checks a hopping window's size and slide; returns them in
 * microseconds.
 */
void
HopLengths(Interval *size, Interval *slide, int64 *size_us, int64 *slide_us)
{
	*size_us = WindowLength(size, "size of a hopping window");
	*slide_us = WindowLength(slide, "slide of a hopping window");
	if (*slide_us > *size_us)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the slide of a hopping window must not be longer than its size"),
				 errhint("Windows that slide by more than their length leave instants out: use a smaller slide, or flowstate.tumble.")));
}

/*
 * CumulateLengths checks a cumulating window's step and largest size;
 * returns them in microseconds.
 */
void
CumulateLengths(Interval *step, Interval *max_size, int64 *step_us, int64 *max_us)
{
	*step_us = WindowLength(step, "step of cumulating windows");
	*max_us = WindowLength(max_size, "size of cumulating windows");
	if (*max_us % *step_us != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the largest size of cumulating windows must be a multiple of their step"),
				 errhint("Give a step that divides the size, such as '1 hour' for '1 day'.")));
}

extern PGDLLEXPORT Datum flowstate_cumulate(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_cumulate);

/*
 * flowstate_cumulate returns (window_start, window_end) for each cumulating
 * window that holds ts, the shortest first.
 */
Datum
flowstate_cumulate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		ts = PG_GETARG_INT64(0);
	int64		step_us;
	int64		max_us;
	int64		start;

	CumulateLengths(PG_GETARG_INTERVAL_P(1), PG_GETARG_INTERVAL_P(2), &step_us, &max_us);
	InitMaterializedSRF(fcinfo, 0);
	if (TIMESTAMP_NOT_FINITE(ts))
		return (Datum) 0;
	start = WindowFloor(ts, max_us);
	for (int64 end = WindowFloor(ts, step_us) + step_us; end <= start + max_us; end += step_us)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(start);
		values[1] = Int64GetDatum(end);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * flowstate_hop returns (window_start, window_end) for each window that
 * holds ts, the latest first; for timestamp and timestamptz alike (the
 * same microseconds from the epoch).
 */
Datum
flowstate_hop(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		ts = PG_GETARG_INT64(0);
	int64		size_us;
	int64		slide_us;
	int64		start;

	HopLengths(PG_GETARG_INTERVAL_P(1), PG_GETARG_INTERVAL_P(2), &size_us, &slide_us);
	InitMaterializedSRF(fcinfo, 0);
	if (TIMESTAMP_NOT_FINITE(ts))
		return (Datum) 0;

	/* from the latest window start at or before ts */
	for (start = WindowFloor(ts, slide_us); start > ts - size_us; start -= slide_us)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		values[0] = Int64GetDatum(start);
		values[1] = Int64GetDatum(start + size_us);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* Whether a function is flowstate.hop or, with cumulate, flowstate.cumulate. */
static bool
is_window_function(Oid funcid, bool *cumulate)
{
	char	   *name = get_func_name(funcid);
	Oid			nsp = get_namespace_oid("flowstate", true);

	if (name == NULL || !OidIsValid(nsp) || get_func_namespace(funcid) != nsp)
		return false;
	*cumulate = strcmp(name, "cumulate") == 0;
	return *cumulate || strcmp(name, "hop") == 0;
}

static void
refuse_shape(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s in a continuous view of hopping or cumulating windows", what),
			 errhint("Write SELECT w.window_start, w.window_end, keys, aggregates FROM source, LATERAL flowstate.hop(source.ts, size, slide) w [WHERE ...] GROUP BY w.window_start, w.window_end, keys (or flowstate.cumulate(source.ts, step, max_size)).")));
}

/* Whether an expression reads the function's columns (varno 2). */
static bool
reads_windows_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varno == 2 && ((Var *) node)->varlevelsup == 0;
	return expression_tree_walker(node, reads_windows_walker, context);
}

static int64
gcd64(int64 a, int64 b)
{
	while (b != 0)
	{
		int64		t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/*
 * HopFind tells whether a defining query groups by hopping windows: FROM
 * a source and LATERAL flowstate.hop() over it.  It refuses the other
 * shapes that use flowstate.hop; returns false for queries without it.
 */
bool
HopFind(Query *query, HopSpec *hop)
{
	RangeTblEntry *src;
	RangeTblEntry *fn;
	RangeTblFunction *rtf;
	FuncExpr   *fe;
	Node	   *size;
	Node	   *slide;
	ListCell   *lc;
	bool		grouped = false;

	if (list_length(query->rtable) != 2)
		return false;
	fn = rt_fetch(2, query->rtable);
	if (fn->rtekind != RTE_FUNCTION || list_length(fn->functions) != 1)
		return false;
	rtf = linitial(fn->functions);
	if (!IsA(rtf->funcexpr, FuncExpr) ||
		!is_window_function(((FuncExpr *) rtf->funcexpr)->funcid, &hop->cumulate))
		return false;
	fe = (FuncExpr *) rtf->funcexpr;

	/* what the panes' query would not carry: refused here, not dropped */
	if (query->sortClause != NIL)
		refuse_shape("ORDER BY is not supported (order the rows when you read the view)");
	if (query->limitCount != NULL || query->limitOffset != NULL)
		refuse_shape("LIMIT and OFFSET are not supported (limit the rows when you read the view)");
	if (query->distinctClause != NIL || query->hasWindowFuncs || query->groupingSets != NIL ||
		query->cteList != NIL || query->setOperations != NULL || query->hasTargetSRFs)
		refuse_shape("DISTINCT, window functions, GROUPING SETS, WITH, set operations and set-returning functions in the select list are not supported");

	src = rt_fetch(1, query->rtable);
	if (src->rtekind != RTE_RELATION || list_length(query->jointree->fromlist) != 2 ||
		!IsA(linitial(query->jointree->fromlist), RangeTblRef) ||
		!IsA(lsecond(query->jointree->fromlist), RangeTblRef))
		refuse_shape("flowstate.hop must follow its one source in FROM, with a comma: anything else is not supported");
	if (fn->funcordinality)
		refuse_shape("WITH ORDINALITY is not supported");
	size = lsecond(fe->args);
	slide = lthird(fe->args);
	if (!IsA(size, Const) || !IsA(slide, Const) || ((Const *) size)->constisnull ||
		((Const *) slide)->constisnull)
		refuse_shape("a size or slide that is not a constant is not supported");
	hop->ts_expr = linitial(fe->args);
	if (reads_windows_walker(hop->ts_expr, NULL))
		refuse_shape("an event time computed from the windows is not supported");
	if (reads_windows_walker(query->jointree->quals, NULL))
		refuse_shape("a WHERE condition on the windows is not supported (filter the windows when reading the view)");
	if (hop->cumulate)
	{
		/* cumulate(ts, step, max_size): panes of step */
		hop->slide = DatumGetIntervalP(((Const *) size)->constvalue);
		hop->size = DatumGetIntervalP(((Const *) slide)->constvalue);
		CumulateLengths(hop->slide, hop->size, &hop->slide_us, &hop->size_us);
	}
	else
	{
		hop->size = DatumGetIntervalP(((Const *) size)->constvalue);
		hop->slide = DatumGetIntervalP(((Const *) slide)->constvalue);
		HopLengths(hop->size, hop->slide, &hop->size_us, &hop->slide_us);
	}
	hop->pane_us = gcd64(hop->size_us, hop->slide_us);

	/*
	 * The windows are grouped by what tells them apart (their start; their
	 * end, for cumulating windows, which share their start); their columns
	 * only as keys.
	 */
	foreach(lc, query->groupClause)
	{
		Node	   *expr = get_sortgroupclause_expr(lfirst(lc), query->targetList);

		if (IsA(expr, Var) && ((Var *) expr)->varno == 2)
			grouped |= ((Var *) expr)->varattno == (hop->cumulate ? 2 : 1);
		else if (reads_windows_walker(expr, NULL))
			refuse_shape("a group key computed from the windows is not supported");
	}
	if (!grouped)
		refuse_shape(hop->cumulate ?
					 "a query of cumulating windows that does not GROUP BY w.window_end is not supported" :
					 "a query that does not GROUP BY w.window_start is not supported");
	return true;
}

/* How the query's keys and aggregates map to the columns of its panes. */
typedef struct PaneColumns
{
	List	   *keys;			/* group keys but the windows' columns */
	List	   *aggrefs;
} PaneColumns;

/*
 * Replace, in an expression of the view's target list or HAVING, what the
 * panes' view computes by a Var of its columns (window_start, window_end,
 * k1..kn, a1..am, in this order), for deparsing over them.
 */
static Node *
to_panes_mutator(Node *node, PaneColumns *pc)
{
	ListCell   *lc;
	int			i;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == 2 && ((Var *) node)->varlevelsup == 0)
	{
		Var		   *v = (Var *) copyObject(node);

		v->varno = v->varnosyn = 1;
		return (Node *) v;
	}
	i = 0;
	foreach(lc, pc->keys)
	{
		if (equal(node, lfirst(lc)))
			return (Node *) makeVar(1, 3 + i, exprType(node), exprTypmod(node),
									exprCollation(node), 0);
		i++;
	}
	if (IsA(node, Aggref))
	{
		i = 0;
		foreach(lc, pc->aggrefs)
		{
			if (equal(node, lfirst(lc)))
				return (Node *) makeVar(1, 3 + list_length(pc->keys) + i, exprType(node), -1,
										exprCollation(node), 0);
			i++;
		}
		elog(ERROR, "aggregate of a hopping view not found among its panes' columns");
	}
	return expression_tree_mutator(node, to_panes_mutator, pc);
}

/*
 * HopCreateView creates a continuous view of hopping windows, as its
 * caller: its panes (<name>_panes, through flowstate.create_view) and the
 * view <name> that combines them per window.  Returns the view.
 */
Oid
HopCreateView(Oid nspid, const char *name, Query *query, HopSpec *hop,
			  Datum watermark_delay, bool delay_null, Datum allowed_lateness, bool lateness_null,
			  Datum memory_limit, bool limit_null, int64 retention_us, Oid *final_function)
{
	RangeTblEntry *src = rt_fetch(1, query->rtable);
	List	   *src_cxt = deparse_context_for(src->eref->aliasname, src->relid);
	char	   *panes = quote_qualified_identifier(get_namespace_name(nspid), psprintf("%s_panes", name));
	char	   *ts = deparse_expression(hop->ts_expr, src_cxt, true, false);
	char	   *pane = PanesIntervalLiteral(hop->pane_us);
	Oid			window_type = exprType(hop->ts_expr);
	PaneColumns pc = {NIL, NIL};
	StringInfoData q;
	StringInfoData keys;
	StringInfoData targets;
	StringInfoData exprs;
	StringInfoData windows;
	char	   *having;
	char	   *kept = NULL;
	ListCell   *lc;
	int			i;
	Oid			panes_relid;
	Oid			view_relid;

	/* the panes: the same keys and aggregates, per tumbling window of pane_us */
	foreach(lc, query->groupClause)
	{
		Node	   *expr = get_sortgroupclause_expr(lfirst(lc), query->targetList);

		if (!(IsA(expr, Var) && ((Var *) expr)->varno == 2))
			pc.keys = lappend(pc.keys, expr);
	}
	QueryCollectAggrefs((Node *) query->targetList, &pc.aggrefs);
	QueryCollectAggrefs(query->havingQual, &pc.aggrefs);
	initStringInfo(&q);
	initStringInfo(&keys);
	appendStringInfo(&q, "flowstate.tumble(%s, %s) AS window_start,"
					 " flowstate.tumble(%s, %s) OPERATOR(pg_catalog.+) %s AS window_end",
					 ts, pane, ts, pane, PanesIntervalLiteral(hop->size_us));
	appendStringInfoString(&keys, "1");
	i = 0;
	foreach(lc, pc.keys)
	{
		appendStringInfo(&q, ", %s AS k%d", deparse_expression(lfirst(lc), src_cxt, true, false), i + 1);
		appendStringInfo(&keys, ", %d", i + 3);
		i++;
	}
	i = 0;
	foreach(lc, pc.aggrefs)
	{
		appendStringInfo(&q, ", %s AS a%d", deparse_expression(lfirst(lc), src_cxt, true, false), i + 1);
		i++;
	}
	SPI_connect();
	panes_relid = PanesCreate(nspid, name, "_panes",
							  hop->cumulate ? "cumulating windows" : "hopping windows", q.data,
							  src, src_cxt, query->jointree->quals, keys.data,
							  watermark_delay, delay_null, allowed_lateness, lateness_null,
							  memory_limit, limit_null, (Datum) 0, true);

	/* the view: per window, the panes' partial states combined */
	resetStringInfo(&keys);
	i = 0;
	foreach(lc, pc.keys)
	{
		appendStringInfo(&keys, ", (p.keys).k%d", i + 1);
		i++;
	}
	initStringInfo(&targets);
	initStringInfo(&exprs);
	PanesTargets(query->targetList, (Node *(*) (Node *, void *)) to_panes_mutator, &pc,
				 deparse_context_for("x", panes_relid), &targets, &exprs);
	initStringInfo(&windows);
	appendStringInfoString(&windows, "(SELECT y.window_start, y.window_end");
	for (i = 0; i < list_length(pc.keys); i++)
		appendStringInfo(&windows, ", y.k%d", i + 1);
	for (i = 0; i < list_length(pc.aggrefs); i++)
		appendStringInfo(&windows, ", (y.f).a%d", i + 1);
	appendStringInfo(&windows, "\n          FROM (SELECT h.window_start, h.window_end%s,"
					 " flowstate.finalize(flowstate.combine(p.state), NULL::%s) AS f",
					 keys.data, panes);
	appendStringInfo(&windows, "\n                  FROM flowstate.partial_states(NULL::%s) p,"
					 " LATERAL flowstate.%s((p.keys).window_start, %s, %s) h"
					 "\n                 GROUP BY h.window_start, h.window_end%s) y)",
					 panes, hop->cumulate ? "cumulate" : "hop",
					 PanesIntervalLiteral(hop->cumulate ? hop->slide_us : hop->size_us),
					 PanesIntervalLiteral(hop->cumulate ? hop->size_us : hop->slide_us), keys.data);
	having = query->havingQual == NULL ? NULL :
		deparse_expression(to_panes_mutator(copyObject(query->havingQual), &pc),
						   deparse_context_for("x", panes_relid), true, false);

	/* with retention, the windows whose panes are all kept (ViewExpireCutoff) */
	if (retention_us >= 0)
	{
		Interval   *delay = delay_null ? NULL : DatumGetIntervalP(watermark_delay);

		kept = PanesKeptSql(panes_relid, "x.window_end", window_type,
							delay == NULL ? 0 : delay->day * USECS_PER_DAY + delay->time,
							retention_us);
	}
	view_relid = PanesCreateView(nspid, name, targets.data, windows.data, having, kept);
	if (final_function != NULL)
		*final_function = PanesFinalFunction(nspid, name, view_relid, window_type, windows.data,
											 exprs.data, "x.window_start", "x.window_end",
											 "x.window_end", having);
	SPI_finish();
	return view_relid;
}

/*
 * HopViewPanes returns the panes of a continuous view of hopping windows,
 * or InvalidOid if relid is no such view.
 */
Oid
HopViewPanes(Oid relid)
{
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	Oid			panes = InvalidOid;

	SPI_connect();
	/* before ALTER EXTENSION UPDATE to 0.6.0, no hop_view: none */
	if (SPI_execute_with_args("SELECT view::pg_catalog.oid FROM flowstate.view v"
							  " WHERE (pg_catalog.to_jsonb(v) OPERATOR(pg_catalog.->>) 'hop_view')::pg_catalog.regclass"
							  "       OPERATOR(pg_catalog.=) $1::pg_catalog.regclass",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed == 1)
	{
		bool		isnull;

		panes = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return panes;
}
