/*-------------------------------------------------------------------------
 *
 * session.c
 *	  Session windows: flowstate.session(), and the continuous views that
 *	  group by sessions.
 *
 * A session of a partition (a user, say) is a run of its events each less
 * than gap after the one before: an event gap or more after the previous
 * one starts a new session.  flowstate.session(ts, gap) is a window
 * function that returns, for each row, the start (first event time) of
 * its session, so that the defining query
 *
 *	SELECT user_id, session_start, count(*), max(ts) AS last_event
 *	  FROM (SELECT user_id, ts,
 *				   flowstate.session(ts, '10 seconds')
 *					 OVER (PARTITION BY user_id ORDER BY ts) AS session_start
 *			  FROM clicks) s
 *	 GROUP BY user_id, session_start
 *
 * runs as a batch query unchanged, and is the view's oracle.
 *
 * State: a continuous view of such a query (SessionCreateView) keeps it
 * per pane, the tumbling window of length gap, in an ordinary continuous
 * view <name>_panes: the same partition keys and aggregates, plus the
 * first and last event time of the pane (min and max of ts).  Two events
 * of one pane are less than gap apart, so a pane lies in one session
 * whole; a session is a run of panes of its partition, each starting less
 * than gap after the last event of the one before.  The view <name> users
 * read numbers the sessions over the panes' partial states, all of them as
 * one read of the panes shows them (the README's "What a reader sees"),
 * and combines each session's panes (flowstate.partial_states,
 * flowstate.combine, flowstate.finalize).
 *
 * So an event that bridges two sessions merges them and a DELETE of that
 * event splits them again: both only change the panes (the pane's min and
 * max are recomputed from the table after a DELETE, as for any view), and
 * no reader ever sees a session half merged.  Memory grows with the span
 * of the sessions over gap, not with the events.  A pane is final as a
 * tumbling window of length gap is (its end plus allowed_lateness behind
 * the watermark); a row into a final pane is a late event; a session is
 * final once the pane after its last event is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "windowapi.h"

#include "api/hop.h"
#include "api/panes.h"
#include "api/session.h"
#include "query/query.h"

extern PGDLLEXPORT Datum flowstate_session(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_session);

/* What flowstate.session() remembers of its partition between rows. */
typedef struct SessionCursor
{
	bool		seen;			/* an event time before this row */
	int64		last;			/* the latest event time so far */
	int64		start;			/* the start of its session */
} SessionCursor;

/*
 * flowstate_session is the window function flowstate.session(ts, gap): the
 * start of the session of the current row.  The rows of a partition come
 * in the OVER clause's order; an event time earlier than the one before is
 * refused (no ORDER BY ts, or a descending one).  A NULL time has no
 * session: NULL, wherever NULLS FIRST or LAST puts it.
 */
Datum
flowstate_session(PG_FUNCTION_ARGS)
{
	WindowObject winobj = PG_WINDOW_OBJECT();
	SessionCursor *cursor = WinGetPartitionLocalMemory(winobj, sizeof(SessionCursor));
	bool		isnull;
	bool		gap_null;
	int64		ts = DatumGetInt64(WinGetFuncArgCurrent(winobj, 0, &isnull));
	Datum		gap = WinGetFuncArgCurrent(winobj, 1, &gap_null);
	int64		gap_us;

	if (gap_null)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the gap of session windows must not be null"),
				 errhint("Give an interval such as '10 minutes'.")));
	gap_us = WindowLength(DatumGetIntervalP(gap), "gap of session windows");
	if (isnull)
		PG_RETURN_NULL();
	if (cursor->seen && ts < cursor->last)
		ereport(ERROR,
				(errcode(ERRCODE_WINDOWING_ERROR),
				 errmsg("flowstate.session() needs the rows of each partition in the order of their event time"),
				 errhint("Write OVER (PARTITION BY ... ORDER BY ts), with ts the first argument of flowstate.session().")));

	/* a gap or more since the partition's last event: a new session */
	if (!cursor->seen || TIMESTAMP_NOT_FINITE(ts) || TIMESTAMP_NOT_FINITE(cursor->last) ||
		ts - cursor->last >= gap_us)
		cursor->start = ts;
	cursor->seen = true;
	cursor->last = ts;
	PG_RETURN_INT64(cursor->start);
}

/* Whether a function is flowstate.session. */
static bool
is_session_function(Oid funcid)
{
	char	   *name = get_func_name(funcid);
	Oid			nsp = get_namespace_oid("flowstate", true);

	return name != NULL && OidIsValid(nsp) && get_func_namespace(funcid) == nsp &&
		strcmp(name, "session") == 0;
}

/* Whether a query, or a query inside it, calls flowstate.session(). */
static bool
calls_session_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, WindowFunc))
		return is_session_function(((WindowFunc *) node)->winfnoid);
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, calls_session_walker, context, 0);
	return expression_tree_walker(node, calls_session_walker, context);
}

static void
refuse_shape(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s in a continuous view of session windows", what),
			 errhint("Write SELECT keys, session_start, aggregates FROM (SELECT keys, ts, columns, flowstate.session(ts, gap) OVER (PARTITION BY keys ORDER BY ts) AS session_start FROM source [WHERE ...]) s GROUP BY keys, session_start.")));
}

/* Whether an expression of the outer query reads the subquery's column attno. */
static bool
reads_column_walker(Node *node, AttrNumber *attno)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
		return ((Var *) node)->varno == 1 && ((Var *) node)->varlevelsup == 0 &&
			((Var *) node)->varattno == *attno;
	return expression_tree_walker(node, reads_column_walker, attno);
}

/* Refuses what a query or subquery has that a view of sessions cannot keep. */
static void
refuse_clauses(Query *query)
{
	if (query->sortClause != NIL)
		refuse_shape("ORDER BY is not supported (order the rows when you read the view)");
	if (query->limitCount != NULL || query->limitOffset != NULL)
		refuse_shape("LIMIT and OFFSET are not supported");
	if (query->distinctClause != NIL || query->groupingSets != NIL || query->cteList != NIL ||
		query->setOperations != NULL || query->hasTargetSRFs || query->hasSubLinks ||
		query->rowMarks != NIL)
		refuse_shape("DISTINCT, GROUPING SETS, WITH, set operations, set-returning functions in the select list, subqueries in expressions and FOR UPDATE are not supported");
}

/*
 * SessionFind tells whether a defining query groups by session windows:
 * the outer query groups, by the session and its partition keys, the rows
 * of a subquery over one source that numbers them with flowstate.session.
 * It refuses the other shapes that call flowstate.session; returns false
 * for queries without it.
 */
bool
SessionFind(Query *query, SessionSpec *session)
{
	RangeTblEntry *rte;
	Query	   *inner;
	WindowClause *wc;
	WindowFunc *wf = NULL;
	SortGroupClause *order;
	Oid			opfamily;
	Oid			opcintype;
	int16		strategy;
	Node	   *gap;
	ListCell   *lc;
	bool		grouped = false;
	List	   *aggrefs = NIL;

	memset(session, 0, sizeof(SessionSpec));
	if (!calls_session_walker((Node *) query, NULL))
		return false;

	/* the outer query: groups of the subquery's rows */
	if (query->hasWindowFuncs)
		refuse_shape("flowstate.session() in the grouping query is not supported (call it in a subquery in FROM)");
	refuse_clauses(query);
	if (list_length(query->rtable) != 1 || list_length(query->jointree->fromlist) != 1 ||
		!IsA(linitial(query->jointree->fromlist), RangeTblRef) ||
		(rte = rt_fetch(1, query->rtable))->rtekind != RTE_SUBQUERY)
		refuse_shape("a FROM clause other than the one subquery that calls flowstate.session() is not supported");
	if (query->jointree->quals != NULL)
		refuse_shape("a WHERE condition outside the subquery is not supported (filter the rows inside it, or use FILTER (WHERE ...) on the aggregates)");
	if (query->groupClause == NIL || !query->hasAggs)
		refuse_shape("a query without GROUP BY and aggregates is not supported");

	/* the subquery: one source, its rows numbered by flowstate.session() */
	inner = rte->subquery;
	refuse_clauses(inner);
	if (list_length(inner->rtable) != 1 || list_length(inner->jointree->fromlist) != 1 ||
		!IsA(linitial(inner->jointree->fromlist), RangeTblRef) ||
		rt_fetch(1, inner->rtable)->rtekind != RTE_RELATION)
		refuse_shape("a subquery over anything but one table or stream is not supported");
	if (inner->groupClause != NIL || inner->hasAggs || inner->havingQual != NULL)
		refuse_shape("GROUP BY or aggregates in the subquery are not supported");
	foreach(lc, inner->targetList)
	{
		TargetEntry *tle = lfirst(lc);

		if (tle->expr != NULL && IsA(tle->expr, WindowFunc) &&
			is_session_function(((WindowFunc *) tle->expr)->winfnoid) && !tle->resjunk)
		{
			if (wf != NULL)
				refuse_shape("more than one call of flowstate.session() is not supported");
			wf = (WindowFunc *) tle->expr;
			session->session_attno = tle->resno;
		}
		else if (contain_windowfuncs((Node *) tle->expr))
			refuse_shape("window functions other than flowstate.session(), or flowstate.session() inside an expression, are not supported");
	}
	if (wf == NULL || list_length(inner->windowClause) != 1)
		refuse_shape("flowstate.session() must be a column of the subquery, alone in its OVER clause");
	if (wf->aggfilter != NULL)
		refuse_shape("FILTER on flowstate.session() is not supported");
	wc = linitial(inner->windowClause);
	session->ts_expr = linitial(wf->args);

	/* rows in the order of the event time */
	if (list_length(wc->orderClause) != 1 ||
		!equal(get_sortgroupclause_expr(linitial(wc->orderClause), inner->targetList),
			   session->ts_expr))
		ereport(ERROR,
				(errcode(ERRCODE_WINDOWING_ERROR),
				 errmsg("flowstate.session() must order its rows by its event time, and by nothing else"),
				 errhint("Write OVER (PARTITION BY keys ORDER BY ts), with ts the first argument of flowstate.session().")));
	order = linitial(wc->orderClause);
	if (!get_ordering_op_properties(order->sortop, &opfamily, &opcintype, &strategy) ||
		strategy != BTLessStrategyNumber)
		ereport(ERROR,
				(errcode(ERRCODE_WINDOWING_ERROR),
				 errmsg("flowstate.session() must order its rows by ascending event time"),
				 errhint("Remove DESC (and USING) from the ORDER BY of its OVER clause.")));

	/* a constant gap */
	gap = lsecond(wf->args);
	if (!IsA(gap, Const) || ((Const *) gap)->constisnull)
		refuse_shape("a gap that is not a constant is not supported");
	session->gap = DatumGetIntervalP(((Const *) gap)->constvalue);
	session->gap_us = WindowLength(session->gap, "gap of session windows");

	/* the partitions: the sessions' keys */
	foreach(lc, wc->partitionClause)
		session->keys = lappend(session->keys,
								get_sortgroupclause_expr(lfirst(lc), inner->targetList));

	/* the outer query groups by the session and every key, and by nothing else */
	foreach(lc, session->keys)
		session->key_attnos = lappend_int(session->key_attnos, 0);
	foreach(lc, query->groupClause)
	{
		Node	   *expr = get_sortgroupclause_expr(lfirst(lc), query->targetList);
		TargetEntry *tle;
		ListCell   *k;
		bool		found = false;

		if (!IsA(expr, Var) || ((Var *) expr)->varno != 1)
			refuse_shape("a group key computed in the grouping query is not supported (compute it in the subquery)");
		if (((Var *) expr)->varattno == session->session_attno)
		{
			grouped = true;
			continue;
		}
		tle = get_tle_by_resno(inner->targetList, ((Var *) expr)->varattno);
		foreach(k, session->keys)
		{
			if (equal(tle->expr, lfirst(k)))
			{
				lfirst_int(list_nth_cell(session->key_attnos, foreach_current_index(k))) = tle->resno;
				found = true;
			}
		}
		if (!found)
			refuse_shape("a group key that is not a PARTITION BY expression of flowstate.session() is not supported");
	}
	if (!grouped)
		refuse_shape("a query that does not GROUP BY the session is not supported");
	foreach(lc, session->key_attnos)
	{
		if (lfirst_int(lc) == 0)
			refuse_shape("a PARTITION BY expression that the grouping query does not GROUP BY is not supported (select it in the subquery and group by it)");
	}

	/* aggregates over the rows, not over the sessions */
	QueryCollectAggrefs((Node *) query->targetList, &aggrefs);
	QueryCollectAggrefs(query->havingQual, &aggrefs);
	foreach(lc, aggrefs)
	{
		if (reads_column_walker(lfirst(lc), &session->session_attno))
			refuse_shape("an aggregate of the session column is not supported (the session's first event is min(ts))");
	}
	session->inner = inner;
	return true;
}

/* How the outer query's columns map to those of the panes. */
typedef struct SessionColumns
{
	SessionSpec *session;
	List	   *aggrefs;		/* the outer query's aggregates */
} SessionColumns;

/*
 * Replace, in an expression of the view's target list or HAVING, the
 * session, the keys and the aggregates by Vars of the panes' columns
 * (window_start, k1..kn, a1..am, in this order): the view's rows have
 * those columns, the session's start as window_start.
 */
static Node *
to_panes_mutator(Node *node, SessionColumns *sc)
{
	SessionSpec *session = sc->session;
	ListCell   *lc;

	if (node == NULL)
		return NULL;
	if (IsA(node, Var) && ((Var *) node)->varno == 1 && ((Var *) node)->varlevelsup == 0)
	{
		Var		   *v = (Var *) node;

		if (v->varattno == session->session_attno)
			return (Node *) makeVar(1, 1, v->vartype, v->vartypmod, v->varcollid, 0);
		foreach(lc, session->key_attnos)
		{
			if (lfirst_int(lc) == v->varattno)
				return (Node *) makeVar(1, 2 + foreach_current_index(lc), v->vartype,
										v->vartypmod, v->varcollid, 0);
		}
		elog(ERROR, "column of a session view not found among its panes' columns");
	}
	if (IsA(node, Aggref))
	{
		foreach(lc, sc->aggrefs)
		{
			if (equal(node, lfirst(lc)))
				return (Node *) makeVar(1, 2 + list_length(session->keys) + foreach_current_index(lc),
										exprType(node), -1, exprCollation(node), 0);
		}
		elog(ERROR, "aggregate of a session view not found among its panes' columns");
	}
	return expression_tree_mutator(node, to_panes_mutator, sc);
}

/* "PARTITION BY prefix.k1, ..." or nothing, for n keys. */
static char *
partition_by(const char *prefix, int n)
{
	char	   *keys = PanesKeyList(prefix, n, true);

	return n == 0 ? "" : psprintf("PARTITION BY %s ", keys + 2);
}

/*
 * SessionCreateView creates a continuous view of session windows, as its
 * caller: its panes (<name>_panes, through flowstate.create_view) and the
 * view <name> that numbers the sessions over them and combines each one's
 * panes.  Returns the view.
 */
Oid
SessionCreateView(Oid nspid, const char *name, Query *query, SessionSpec *session,
				  Datum watermark_delay, bool delay_null, Datum allowed_lateness, bool lateness_null,
				  Datum memory_limit, bool limit_null, int64 retention_us, Oid *final_function)
{
	Query	   *inner = session->inner;
	RangeTblEntry *sub = rt_fetch(1, query->rtable);
	RangeTblEntry *src = rt_fetch(1, inner->rtable);
	List	   *src_cxt = deparse_context_for(src->eref->aliasname, src->relid);
	char	   *panes = quote_qualified_identifier(get_namespace_name(nspid), psprintf("%s_panes", name));
	char	   *ts = deparse_expression(session->ts_expr, src_cxt, true, false);
	char	   *gap = PanesIntervalLiteral(session->gap_us);
	int			nkeys = list_length(session->keys);
	Oid			window_type = exprType(session->ts_expr);
	SessionColumns sc = {session, NIL};
	StringInfoData q;
	StringInfoData group;
	StringInfoData targets;
	StringInfoData exprs;
	StringInfoData windows;
	char	   *having;
	char	   *kept = NULL;
	ListCell   *lc;
	int			nagg;
	bool		has_sublinks = false;
	Oid			panes_relid;
	Oid			view_relid;

	/*
	 * The panes: per key and tumbling window of gap, the aggregates (over
	 * the source's columns, as the subquery computes them) and the first
	 * and last event time.
	 */
	QueryCollectAggrefs((Node *) query->targetList, &sc.aggrefs);
	QueryCollectAggrefs(query->havingQual, &sc.aggrefs);
	nagg = list_length(sc.aggrefs);
	initStringInfo(&q);
	initStringInfo(&group);
	appendStringInfo(&q, "flowstate.tumble(%s, %s) AS window_start", ts, gap);
	appendStringInfoString(&group, "1");
	foreach(lc, session->keys)
	{
		appendStringInfo(&q, ", %s AS k%d", deparse_expression(lfirst(lc), src_cxt, true, false),
						 foreach_current_index(lc) + 1);
		appendStringInfo(&group, ", %d", foreach_current_index(lc) + 2);
	}
	foreach(lc, sc.aggrefs)
	{
		Node	   *agg = ReplaceVarsFromTargetList(copyObject(lfirst(lc)), 1, 0, sub,
													inner->targetList, REPLACEVARS_REPORT_ERROR,
													0, &has_sublinks);

		appendStringInfo(&q, ", %s AS a%d", deparse_expression(agg, src_cxt, true, false),
						 foreach_current_index(lc) + 1);
	}
	appendStringInfo(&q, ", pg_catalog.min(%s) AS a%d, pg_catalog.max(%s) AS a%d", ts, nagg + 1, ts, nagg + 2);
	SPI_connect();
	panes_relid = PanesCreate(nspid, name, "_panes", "session windows", q.data, src, src_cxt,
							  inner->jointree->quals, group.data, watermark_delay, delay_null,
							  allowed_lateness, lateness_null, memory_limit, limit_null,
							  (Datum) 0, true);

	/*
	 * The view: the panes of each key in time order (b); a pane starting a
	 * gap or more after the last event of the one before starts a session
	 * (c); sessions numbered by a running count of those (s); each one's
	 * panes combined (y); the query's columns computed over them (x), which
	 * has the session's last event too.
	 */
	initStringInfo(&targets);
	initStringInfo(&exprs);
	PanesTargets(query->targetList, (Node *(*) (Node *, void *)) to_panes_mutator, &sc,
				 deparse_context_for("x", panes_relid), &targets, &exprs);
	initStringInfo(&windows);
	appendStringInfo(&windows, "(SELECT (y.f).a%d AS window_start%s", nagg + 1, PanesKeyList("y", nkeys, true));
	for (int i = 0; i < nagg; i++)
		appendStringInfo(&windows, ", (y.f).a%d", i + 1);
	appendStringInfo(&windows, ", (y.f).a%d AS last_ts", nagg + 2);
	appendStringInfo(&windows, "\n          FROM (SELECT flowstate.finalize(flowstate.combine(s.state), NULL::%s) AS f%s",
					 panes, PanesKeyList("s", nkeys, true));
	appendStringInfo(&windows, "\n                  FROM (SELECT c.*, pg_catalog.sum(c.starts) OVER (%sORDER BY c.window_start) AS session_no",
					 partition_by("c", nkeys));
	appendStringInfo(&windows, "\n                          FROM (SELECT b.*, CASE WHEN b.first_ts OPERATOR(pg_catalog.-)"
					 " pg_catalog.lag(b.last_ts) OVER (%sORDER BY b.window_start) OPERATOR(pg_catalog.<) %s"
					 " THEN 0 ELSE 1 END AS starts",
					 partition_by("b", nkeys), gap);
	appendStringInfo(&windows, "\n                                  FROM (SELECT (p.keys).window_start%s, p.state,"
					 " (z.f).a%d AS first_ts, (z.f).a%d AS last_ts",
					 PanesKeyList("(p.keys)", nkeys, true), nagg + 1, nagg + 2);
	appendStringInfo(&windows, "\n                                          FROM flowstate.partial_states(NULL::%s) p,"
					 " LATERAL (SELECT flowstate.finalize(p.state, NULL::%s) AS f) z) b) c) s",
					 panes, panes);
	appendStringInfo(&windows, "\n                 GROUP BY s.session_no%s) y)", PanesKeyList("s", nkeys, true));
	having = query->havingQual == NULL ? NULL :
		deparse_expression(to_panes_mutator(copyObject(query->havingQual), &sc),
						   deparse_context_for("x", panes_relid), true, false);
	/* with retention, the sessions that ended less than it ago */
	if (retention_us >= 0)
	{
		Interval   *delay = delay_null ? NULL : DatumGetIntervalP(watermark_delay);

		kept = PanesKeptSql(panes_relid, psprintf("(x.last_ts OPERATOR(pg_catalog.+) %s)", gap),
							window_type, delay == NULL ? 0 : delay->day * USECS_PER_DAY + delay->time,
							retention_us);
	}
	view_relid = PanesCreateView(nspid, name, targets.data, windows.data, having, kept);

	/*
	 * A session ends gap after its last event, and is final once the pane
	 * after the one holding its last event is.
	 */
	if (final_function != NULL)
		*final_function = PanesFinalFunction(nspid, name, view_relid, window_type, windows.data,
											 exprs.data, "x.window_start",
											 psprintf("x.last_ts OPERATOR(pg_catalog.+) %s", gap),
											 psprintf("flowstate.tumble(x.last_ts, %s) OPERATOR(pg_catalog.+) %s",
													  gap, PanesIntervalLiteral(2 * session->gap_us)),
											 having);
	SPI_finish();
	return view_relid;
}
