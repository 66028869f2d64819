/*-------------------------------------------------------------------------
 *
 * multiset.c
 *	  Continuous views with aggregates over the multiset of a value: count,
 *	  sum and avg of DISTINCT values, array_agg and string_agg of DISTINCT
 *	  values or of every value in order, percentile_disc, percentile_cont
 *	  and mode.
 *
 * PostgreSQL gives these no combine function: they need every value of
 * the group.  A continuous view of a query such as
 *
 *	SELECT flowstate.tumble(ts, '1 minute') AS minute, page,
 *		   count(*) AS hits, count(DISTINCT user_id) AS users
 *	  FROM clicks GROUP BY 1, 2
 *
 * (MultisetCreateView) keeps, per group and value of the aggregates'
 * argument, the number of rows and the query's other aggregates, in an
 * ordinary continuous view <name>_values grouped by the query's keys and
 * the value: the group's multiset of values, value -> count, exact and
 * retractable (a value whose count falls to zero is a group that goes).
 * The view <name> users read combines, per group, the partial states of
 * its values for the other aggregates (flowstate.combine,
 * flowstate.finalize) and computes the multiset's aggregates over its
 * values and their counts in the same read, so that the defining query
 * runs as a batch query unchanged and is the view's oracle:
 *	- count(DISTINCT x), sum(DISTINCT x), avg(DISTINCT x), array_agg and
 *	  string_agg of DISTINCT x: over the values, in their order (as
 *	  PostgreSQL, which sorts the values of a DISTINCT aggregate);
 *	  array_agg(x ORDER BY x) and string_agg(x, sep ORDER BY x): each value
 *	  as many times as it came;
 *	- percentile_disc(f): the first value whose running count reaches
 *	  ceil(f * n), n the non-null rows; percentile_cont(f) of float8: the
 *	  values at rows floor and ceil of f * (n - 1) (0-based), interpolated
 *	  as PostgreSQL does; mode(): the most frequent value, the least of
 *	  those tied.
 * All the multiset's aggregates of a view are over one argument.
 *
 * Over hopping or cumulating windows (flowstate.hop, flowstate.cumulate),
 * <name>_values is kept per pane instead (hop.c): its window key is the
 * pane, flowstate.tumble(ts, pane); a read adds up, per window and value,
 * the states of the window's panes (flowstate.combine) before it computes
 * the multiset's aggregates as above.  The catalog records the windows
 * with <name>_values (hop_kind, hop_size, hop_slide), so that its panes
 * become final, rows late and panes go with retention as those of a view
 * of hopping windows; with retention, <name> shows the windows whose
 * panes are all kept.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_namespace.h"
#include "catalog/pg_aggregate.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/ruleutils.h"

#include "api/hop.h"
#include "api/multiset.h"
#include "api/panes.h"
#include "query/query.h"

/* What a multiset aggregate computes. */
typedef enum MultisetKind
{
	MS_NONE,					/* an ordinary aggregate */
	MS_COUNT,					/* count(DISTINCT x) */
	MS_SUM,						/* sum(DISTINCT x) */
	MS_AVG,						/* avg(DISTINCT x) */
	MS_ARRAY,					/* array_agg(DISTINCT x) */
	MS_STRING,					/* string_agg(DISTINCT x, sep) */
	MS_ARRAY_ALL,				/* array_agg(x ORDER BY x) */
	MS_STRING_ALL,				/* string_agg(x, sep ORDER BY x) */
	MS_PERCENTILE_DISC,			/* percentile_disc(f) WITHIN GROUP (ORDER BY x) */
	MS_PERCENTILE_CONT,			/* percentile_cont(f) WITHIN GROUP (ORDER BY x) */
	MS_MODE						/* mode() WITHIN GROUP (ORDER BY x) */
} MultisetKind;

static void
refuse_shape(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s in a continuous view with DISTINCT or ordered-set aggregates", what),
			 errhint("Such a view takes count, sum, avg, array_agg and string_agg of DISTINCT x, array_agg and string_agg ORDER BY x, percentile_disc, percentile_cont and mode WITHIN GROUP (ORDER BY x), all over one x, beside the other supported aggregates, with GROUP BY.")));
}

/* The name of a function of pg_catalog, or NULL for any other. */
static char *
catalog_function(Oid funcid)
{
	if (get_func_namespace(funcid) != PG_CATALOG_NAMESPACE)
		return NULL;
	return get_func_name(funcid);
}

/* Whether the sort clause sorts ascending by its type's default order. */
static bool
ascending(SortGroupClause *sort)
{
	Oid			opfamily;
	Oid			opcintype;
	int16		strategy;

	return get_ordering_op_properties(sort->sortop, &opfamily, &opcintype, &strategy) &&
		strategy == BTLessStrategyNumber && sort->nulls_first == false;
}

/*
 * The multiset kind of an aggregate, and its argument (*value); MS_NONE
 * for an aggregate without DISTINCT, ORDER BY or WITHIN GROUP.  Refuses
 * those it cannot compute.
 */
static MultisetKind
multiset_kind(Aggref *aggref, Node **value)
{
	char	   *name = catalog_function(aggref->aggfnoid);
	TargetEntry *arg;

	if (aggref->aggkind == AGGKIND_NORMAL && aggref->aggdistinct == NIL && aggref->aggorder == NIL)
		return MS_NONE;
	if (aggref->aggfilter != NULL)
		refuse_shape("FILTER on a DISTINCT or ordered-set aggregate is not supported");
	if (name == NULL)
		refuse_shape(psprintf("aggregate %s is not supported", format_procedure(aggref->aggfnoid)));

	if (aggref->aggkind == AGGKIND_ORDERED_SET)
	{
		SortGroupClause *sort;

		if (list_length(aggref->args) != 1 || list_length(aggref->aggorder) != 1)
			refuse_shape(psprintf("%s over several values is not supported", name));
		arg = linitial(aggref->args);
		sort = linitial(aggref->aggorder);
		if (!ascending(sort))
			refuse_shape(psprintf("%s in descending order is not supported (use 1 - fraction)", name));
		*value = (Node *) arg->expr;
		if (strcmp(name, "mode") == 0)
			return MS_MODE;
		if ((strcmp(name, "percentile_disc") == 0 || strcmp(name, "percentile_cont") == 0) &&
			list_length(aggref->aggdirectargs) == 1 &&
			exprType(linitial(aggref->aggdirectargs)) == FLOAT8OID)
		{
			Node	   *fraction = eval_const_expressions(NULL, linitial(aggref->aggdirectargs));

			if (!IsA(fraction, Const) || ((Const *) fraction)->constisnull)
				refuse_shape(psprintf("%s of a fraction that is not a constant is not supported", name));
			if (DatumGetFloat8(((Const *) fraction)->constvalue) < 0 ||
				DatumGetFloat8(((Const *) fraction)->constvalue) > 1 ||
				isnan(DatumGetFloat8(((Const *) fraction)->constvalue)))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("percentile value %g is not between 0 and 1",
								DatumGetFloat8(((Const *) fraction)->constvalue)),
						 errhint("Give a fraction such as 0.95 for the 95th percentile.")));
			if (strcmp(name, "percentile_disc") == 0)
				return MS_PERCENTILE_DISC;
			if (exprType(*value) != FLOAT8OID)
				refuse_shape("percentile_cont of other than double precision is not supported");
			return MS_PERCENTILE_CONT;
		}
		refuse_shape(psprintf("ordered-set aggregate %s is not supported", format_procedure(aggref->aggfnoid)));
	}
	if (aggref->aggkind != AGGKIND_NORMAL)
		refuse_shape("hypothetical-set aggregates are not supported");
	arg = linitial(aggref->args);
	*value = (Node *) arg->expr;
	if (aggref->aggdistinct == NIL)
	{
		/* every value, in their order: array_agg and string_agg only */
		if (list_length(aggref->aggorder) != 1 || !ascending(linitial(aggref->aggorder)) ||
			!equal(get_sortgroupclause_expr(linitial(aggref->aggorder), aggref->args), *value))
			refuse_shape(psprintf("ORDER BY in %s other than by its value ascending is not supported", name));
		if (strcmp(name, "array_agg") == 0 && list_length(aggref->args) == 1)
			return MS_ARRAY_ALL;
		if (strcmp(name, "string_agg") == 0 && list_length(aggref->args) == 2 &&
			IsA(((TargetEntry *) lsecond(aggref->args))->expr, Const))
			return MS_STRING_ALL;
		refuse_shape(psprintf("ORDER BY in %s is not supported (only in array_agg(x ORDER BY x) and string_agg(x, 'sep' ORDER BY x))",
							  format_procedure(aggref->aggfnoid)));
	}

	/* DISTINCT sorts the values: an ORDER BY may only say so */
	if (aggref->aggorder != NIL &&
		(list_length(aggref->aggorder) != 1 || !ascending(linitial(aggref->aggorder)) ||
		 !equal(get_sortgroupclause_expr(linitial(aggref->aggorder), aggref->args), *value)))
		refuse_shape(psprintf("ORDER BY in %s(DISTINCT x) other than by x ascending is not supported", name));
	if (strcmp(name, "string_agg") == 0 && list_length(aggref->args) == 2)
	{
		if (!IsA(((TargetEntry *) lsecond(aggref->args))->expr, Const))
			refuse_shape("string_agg with a delimiter that is not a constant is not supported");
		return MS_STRING;
	}
	if (list_length(aggref->args) != 1)
		refuse_shape(psprintf("%s(DISTINCT ...) over several values is not supported", name));
	if (strcmp(name, "count") == 0)
		return MS_COUNT;
	if (strcmp(name, "sum") == 0)
		return MS_SUM;
	if (strcmp(name, "avg") == 0)
		return MS_AVG;
	if (strcmp(name, "array_agg") == 0)
		return MS_ARRAY;
	refuse_shape(psprintf("%s(DISTINCT ...) is not supported", format_procedure(aggref->aggfnoid)));
	return MS_NONE;				/* keep compiler quiet */
}

/* Whether an expression holds an aggregate with DISTINCT, ORDER BY or WITHIN GROUP. */
static bool
has_multiset_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		Aggref	   *aggref = (Aggref *) node;

		return aggref->aggkind != AGGKIND_NORMAL || aggref->aggdistinct != NIL ||
			aggref->aggorder != NIL;
	}
	return expression_tree_walker(node, has_multiset_walker, context);
}

/*
 * MultisetAggregates tells whether a query has aggregates with DISTINCT,
 * ORDER BY or WITHIN GROUP (for the shapes that take none).
 */
bool
MultisetAggregates(Query *query)
{
	return has_multiset_walker((Node *) query->targetList, NULL) ||
		has_multiset_walker(query->havingQual, NULL);
}

/*
 * MultisetFind tells whether a defining query has aggregates over the
 * multiset of a value, and checks its shape: one source, GROUP BY, and
 * all such aggregates over one argument.  False for queries without.
 */
bool
MultisetFind(Query *query, bool windows, MultisetSpec *spec)
{
	ListCell   *lc;

	memset(spec, 0, sizeof(MultisetSpec));
	if (!MultisetAggregates(query))
		return false;
	/* (over hopping windows, HopFind checked the query's shape) */
	if (!windows)
	{
		if (query->sortClause != NIL)
			refuse_shape("ORDER BY is not supported (order the rows when you read the view)");
		if (query->limitCount != NULL || query->limitOffset != NULL)
			refuse_shape("LIMIT and OFFSET are not supported");
		if (query->distinctClause != NIL || query->hasWindowFuncs || query->groupingSets != NIL ||
			query->cteList != NIL || query->setOperations != NULL || query->hasTargetSRFs ||
			query->hasSubLinks)
			refuse_shape("DISTINCT, window functions, GROUPING SETS, WITH, set operations, set-returning functions and subqueries are not supported");
		if (list_length(query->rtable) != 1 || list_length(query->jointree->fromlist) != 1 ||
			!IsA(linitial(query->jointree->fromlist), RangeTblRef) ||
			rt_fetch(1, query->rtable)->rtekind != RTE_RELATION)
			refuse_shape("a FROM clause other than one table or stream is not supported");
		if (query->groupClause == NIL)
			refuse_shape("a query without GROUP BY is not supported");
	}

	QueryCollectAggrefs((Node *) query->targetList, &spec->aggrefs);
	QueryCollectAggrefs(query->havingQual, &spec->aggrefs);
	foreach(lc, spec->aggrefs)
	{
		Node	   *value = NULL;

		if (multiset_kind(lfirst(lc), &value) == MS_NONE)
			continue;
		if (spec->value == NULL)
			spec->value = value;
		else if (!equal(spec->value, value))
			refuse_shape("DISTINCT or ordered-set aggregates over more than one argument are not supported");
	}
	foreach(lc, query->groupClause)
		spec->keys = lappend(spec->keys, get_sortgroupclause_expr(lfirst(lc), query->targetList));
	return true;
}

/* How the query's columns map to those of the values' view. */
typedef struct MultisetColumns
{
	MultisetSpec *spec;
	List	   *plain;			/* ordinary aggregates, a1..am */
	List	   *multiset;		/* multiset aggregates, m1..mq */
} MultisetColumns;

/*
 * Replace, in an expression of the view's target list or HAVING, the keys,
 * the ordinary and the multiset aggregates by Vars of the values' columns
 * (k1..kn, v, a0, a1..am, m1..mq, in this order), for deparsing over them.
 */
static Node *
to_values_mutator(Node *node, MultisetColumns *mc)
{
	ListCell   *lc;
	int			nkeys = list_length(mc->spec->keys);

	if (node == NULL)
		return NULL;
	foreach(lc, mc->spec->keys)
	{
		if (equal(node, lfirst(lc)))
			return (Node *) makeVar(1, 1 + foreach_current_index(lc), exprType(node),
									exprTypmod(node), exprCollation(node), 0);
	}
	if (IsA(node, Aggref))
	{
		foreach(lc, mc->plain)
		{
			if (equal(node, lfirst(lc)))
				return (Node *) makeVar(1, nkeys + 3 + foreach_current_index(lc), exprType(node),
										-1, exprCollation(node), 0);
		}
		foreach(lc, mc->multiset)
		{
			if (equal(node, lfirst(lc)))
				return (Node *) makeVar(1, nkeys + 3 + list_length(mc->plain) + foreach_current_index(lc),
										exprType(node), -1, exprCollation(node), 0);
		}
		elog(ERROR, "aggregate of a continuous view not found among its values' columns");
	}
	return expression_tree_mutator(node, to_values_mutator, mc);
}

/* A constant, as SQL. */
static char *
const_sql(Node *node)
{
	return deparse_expression(node, NIL, false, false);
}

/*
 * The SQL of a multiset aggregate over r, the values of a group: r.v, its
 * count r.n, and (computed for percentiles only) r.nn, the group's
 * non-null rows, and r.cum, their running count up to r.v.
 */
static char *
multiset_sql(Aggref *aggref)
{
	Node	   *value = NULL;
	const char *nonnull = "r.v IS NOT NULL";

	switch (multiset_kind(aggref, &value))
	{
		case MS_COUNT:
			return pstrdup("pg_catalog.count(r.v)");
		case MS_SUM:
			return pstrdup("pg_catalog.sum(r.v ORDER BY r.v)");
		case MS_AVG:
			return pstrdup("pg_catalog.avg(r.v ORDER BY r.v)");
		case MS_ARRAY:
			return pstrdup("pg_catalog.array_agg(r.v ORDER BY r.v)");
		case MS_STRING:
			return psprintf("pg_catalog.string_agg(r.v, %s ORDER BY r.v)",
							const_sql((Node *) ((TargetEntry *) lsecond(aggref->args))->expr));
		case MS_ARRAY_ALL:
			/* each value as many times as it came */
			return pstrdup("(SELECT pg_catalog.array_agg(u.v ORDER BY u.v)"
						   " FROM ROWS FROM (pg_catalog.unnest(pg_catalog.array_agg(r.v ORDER BY r.v)),"
						   " pg_catalog.unnest(pg_catalog.array_agg(r.n ORDER BY r.v))) AS u (v, n),"
						   " pg_catalog.generate_series(1, u.n) AS g)");
		case MS_STRING_ALL:
			return psprintf("(SELECT pg_catalog.string_agg(u.v, %s ORDER BY u.v)"
							" FROM ROWS FROM (pg_catalog.unnest(pg_catalog.array_agg(r.v ORDER BY r.v)),"
							" pg_catalog.unnest(pg_catalog.array_agg(r.n ORDER BY r.v))) AS u (v, n),"
							" pg_catalog.generate_series(1, u.n) AS g)",
							const_sql((Node *) ((TargetEntry *) lsecond(aggref->args))->expr));
		case MS_MODE:
			return psprintf("(pg_catalog.array_agg(r.v ORDER BY r.n DESC, r.v) FILTER (WHERE %s))[1]",
							nonnull);
		case MS_PERCENTILE_DISC:
			{
				char	   *f = const_sql(eval_const_expressions(NULL, linitial(aggref->aggdirectargs)));

				/* rows are numbered from 1: the first row at or past ceil(f n) */
				return psprintf("(pg_catalog.array_agg(r.v ORDER BY r.v) FILTER (WHERE %s AND r.cum::pg_catalog.float8"
								" OPERATOR(pg_catalog.>=) GREATEST(1, pg_catalog.ceil(%s OPERATOR(pg_catalog.*) r.nn::pg_catalog.float8))))[1]",
								nonnull, f);
			}
		case MS_PERCENTILE_CONT:
			{
				char	   *f = const_sql(eval_const_expressions(NULL, linitial(aggref->aggdirectargs)));
				char	   *p = psprintf("(%s OPERATOR(pg_catalog.*) (pg_catalog.max(r.nn) OPERATOR(pg_catalog.-) 1)::pg_catalog.float8)", f);
				char	   *rp = psprintf("(%s OPERATOR(pg_catalog.*) (r.nn OPERATOR(pg_catalog.-) 1)::pg_catalog.float8)", f);
				char	   *lo = psprintf("(pg_catalog.array_agg(r.v ORDER BY r.v) FILTER (WHERE %s AND r.cum::pg_catalog.float8"
										  " OPERATOR(pg_catalog.>=) (pg_catalog.floor(%s) OPERATOR(pg_catalog.+) 1)))[1]",
										  nonnull, rp);
				char	   *hi = psprintf("(pg_catalog.array_agg(r.v ORDER BY r.v) FILTER (WHERE %s AND r.cum::pg_catalog.float8"
										  " OPERATOR(pg_catalog.>=) (pg_catalog.ceil(%s) OPERATOR(pg_catalog.+) 1)))[1]",
										  nonnull, rp);

				/* rows are numbered from 0: between floor and ceil of f (n - 1) */
				return psprintf("CASE WHEN pg_catalog.max(r.nn) IS NULL THEN NULL"
								" WHEN pg_catalog.floor(%s) OPERATOR(pg_catalog.=) pg_catalog.ceil(%s) THEN %s"
								" ELSE %s OPERATOR(pg_catalog.+) ((%s OPERATOR(pg_catalog.-) %s)"
								" OPERATOR(pg_catalog.*) (%s OPERATOR(pg_catalog.-) pg_catalog.floor(%s))) END",
								p, p, lo, lo, hi, lo, p, p);
			}
		case MS_NONE:
			break;
	}
	elog(ERROR, "not a multiset aggregate");
	return NULL;
}

/*
 * MultisetCreateView creates a continuous view with aggregates over the
 * multiset of a value, as its caller: its values (<name>_values, through
 * flowstate.create_view) and the view <name> over them.  Returns the view.
 */
/*
 * Over hopping or cumulating windows: which of the defining query's
 * windows' columns a group key is (1 window_start, 2 window_end), or 0.
 */
static int
window_column(Node *key)
{
	if (IsA(key, Var) && ((Var *) key)->varno == 2 && ((Var *) key)->varlevelsup == 0)
		return ((Var *) key)->varattno;
	return 0;
}

/*
 * The values' rows per window (hop: NULL for none): each group's values
 * with their states, and the rows of each (n).  Over hopping or
 * cumulating windows, the states of a window's panes added up per value.
 */
static char *
values_rows(const char *values, MultisetSpec *spec, const HopSpec *hop)
{
	int			nkeys = list_length(spec->keys);
	StringInfoData b;
	StringInfoData keys;
	int			pane_key = -1;
	ListCell   *lc;

	initStringInfo(&b);
	if (hop == NULL)
	{
		appendStringInfo(&b, "(SELECT %s, (p.keys).v, p.state, (z.f).a0 AS n"
						 "\n                                  FROM flowstate.partial_states(NULL::%s) p,"
						 " LATERAL (SELECT flowstate.finalize(p.state, NULL::%s) AS f) z)",
						 PanesKeyList("(p.keys)", nkeys, false), values, values);
		return b.data;
	}
	initStringInfo(&keys);
	foreach(lc, spec->keys)
	{
		int			col = window_column(lfirst(lc));
		int			i = foreach_current_index(lc);

		if (col != 0 && pane_key < 0)
			pane_key = i;
		appendStringInfo(&keys, "%s%s AS k%d", i > 0 ? ", " : "",
						 col == 1 ? "h.window_start" : col == 2 ? "h.window_end" :
						 psprintf("(p.keys).k%d", i + 1), i + 1);
	}
	Assert(pane_key >= 0);
	appendStringInfo(&b, "(SELECT c.*, (flowstate.finalize(c.state, NULL::%s)).a0 AS n"
					 "\n                                  FROM (SELECT %s, (p.keys).v,"
					 " flowstate.combine(p.state) AS state"
					 "\n                                          FROM flowstate.partial_states(NULL::%s) p,"
					 " LATERAL flowstate.%s((p.keys).k%d, %s, %s) h"
					 "\n                                         GROUP BY ",
					 values, keys.data, values, hop->cumulate ? "cumulate" : "hop", pane_key + 1,
					 PanesIntervalLiteral(hop->cumulate ? hop->slide_us : hop->size_us),
					 PanesIntervalLiteral(hop->cumulate ? hop->size_us : hop->slide_us));
	for (int i = 1; i <= nkeys + 1; i++)
		appendStringInfo(&b, "%s%d", i > 1 ? ", " : "", i);
	appendStringInfoString(&b, ") c)");
	return b.data;
}

/*
 * Over hopping or cumulating windows with retention, the windows whose
 * panes are all kept (as hop.c's): a condition on the end of the window,
 * window_end, or window_start plus size.
 */
static char *
windows_kept(MultisetSpec *spec, const HopSpec *hop, Oid values_relid,
			 Datum watermark_delay, bool delay_null, Datum retention)
{
	Interval   *delay = delay_null ? NULL : DatumGetIntervalP(watermark_delay);
	Interval   *kept = DatumGetIntervalP(retention);
	char	   *end = NULL;
	ListCell   *lc;

	foreach(lc, spec->keys)
	{
		int			col = window_column(lfirst(lc));

		if (col == 2)
			end = psprintf("x.k%d", foreach_current_index(lc) + 1);
		else if (col == 1 && end == NULL)
			end = psprintf("(x.k%d OPERATOR(pg_catalog.+) %s)", foreach_current_index(lc) + 1,
						   PanesIntervalLiteral(hop->size_us));
	}
	Assert(end != NULL);
	return PanesKeptSql(values_relid, end, exprType(hop->ts_expr),
						delay == NULL ? 0 : delay->day * USECS_PER_DAY + delay->time,
						kept->day * USECS_PER_DAY + kept->time);
}

Oid
MultisetCreateView(Oid nspid, const char *name, Query *query, MultisetSpec *spec, const HopSpec *hop,
				   Datum watermark_delay, bool delay_null, Datum allowed_lateness, bool lateness_null,
				   Datum memory_limit, bool limit_null, Datum retention, bool retention_null)
{
	RangeTblEntry *src = rt_fetch(1, query->rtable);
	List	   *src_cxt = deparse_context_for(src->eref->aliasname, src->relid);
	char	   *values = quote_qualified_identifier(get_namespace_name(nspid), psprintf("%s_values", name));
	int			nkeys = list_length(spec->keys);
	MultisetColumns mc = {spec, NIL, NIL};
	StringInfoData select;
	StringInfoData group;
	StringInfoData targets;
	StringInfoData exprs;
	StringInfoData windows;
	ListCell   *lc;
	Oid			values_relid;
	Oid			view_relid;
	bool		percentiles = false;
	bool		has_pane = false;

	foreach(lc, spec->aggrefs)
	{
		Node	   *value = NULL;

		MultisetKind kind = multiset_kind(lfirst(lc), &value);

		if (kind == MS_NONE)
			mc.plain = lappend(mc.plain, lfirst(lc));
		else
			mc.multiset = lappend(mc.multiset, lfirst(lc));
		percentiles |= kind == MS_PERCENTILE_DISC || kind == MS_PERCENTILE_CONT;
	}

	/*
	 * The values: per group and value, its rows (a0) and the ordinary
	 * aggregates; then, for the view's columns only, one column per
	 * multiset aggregate (the row count again, which takes no room).
	 */
	initStringInfo(&select);
	initStringInfo(&group);
	foreach(lc, spec->keys)
	{
		char	   *key;

		/*
		 * Over hopping windows, the first of the windows' columns is the
		 * pane's start (values_rows finds the windows from it), the other
		 * one (if grouped by) the pane's start plus size, which adds no group.
		 */
		if (hop == NULL || window_column(lfirst(lc)) == 0)
			key = deparse_expression(lfirst(lc), src_cxt, true, false);
		else
		{
			key = psprintf("flowstate.tumble(%s, %s)",
						   deparse_expression(hop->ts_expr, src_cxt, true, false),
						   PanesIntervalLiteral(hop->pane_us));
			if (has_pane)
				key = psprintf("%s OPERATOR(pg_catalog.+) %s", key, PanesIntervalLiteral(hop->size_us));
			has_pane = true;
		}
		appendStringInfo(&select, "%s AS k%d, ", key, foreach_current_index(lc) + 1);
		appendStringInfo(&group, "%d, ", foreach_current_index(lc) + 1);
	}
	appendStringInfo(&select, "%s AS v, pg_catalog.count(*) AS a0",
					 deparse_expression(spec->value, src_cxt, true, false));
	appendStringInfo(&group, "%d", nkeys + 1);
	foreach(lc, mc.plain)
		appendStringInfo(&select, ", %s AS a%d", deparse_expression(lfirst(lc), src_cxt, true, false),
						 foreach_current_index(lc) + 1);
	foreach(lc, mc.multiset)
		appendStringInfo(&select, ", pg_catalog.count(*) AS m%d", foreach_current_index(lc) + 1);

	SPI_connect();
	values_relid = PanesCreate(nspid, name, "_values", "DISTINCT or ordered-set aggregates",
							   select.data, src, src_cxt, query->jointree->quals, group.data,
							   watermark_delay, delay_null, allowed_lateness, lateness_null,
							   memory_limit, limit_null, retention, retention_null);

	/*
	 * The view: the values of each group with their counts (b), the
	 * group's non-null rows and their running count in the values' order
	 * (r), per group the ordinary aggregates combined and the multiset's
	 * computed (y), the query's columns over them (x).
	 */
	initStringInfo(&windows);
	appendStringInfo(&windows, "(SELECT %s, NULL AS v, (y.f).a0", PanesKeyList("y", nkeys, false));
	for (int i = 0; i < list_length(mc.plain); i++)
		appendStringInfo(&windows, ", (y.f).a%d", i + 1);
	for (int i = 0; i < list_length(mc.multiset); i++)
		appendStringInfo(&windows, ", y.m%d", i + 1);
	appendStringInfo(&windows, "\n          FROM (SELECT %s, flowstate.finalize(flowstate.combine(r.state), NULL::%s) AS f",
					 PanesKeyList("r", nkeys, false), values);
	foreach(lc, mc.multiset)
		appendStringInfo(&windows, ",\n                       %s AS m%d", multiset_sql(lfirst(lc)),
						 foreach_current_index(lc) + 1);
	/* the running counts only percentiles need: a sort of the values */
	if (percentiles)
		appendStringInfo(&windows, "\n                  FROM (SELECT b.*,"
						 " pg_catalog.sum(CASE WHEN b.v IS NOT NULL THEN b.n END) OVER (PARTITION BY %s) AS nn,"
						 " pg_catalog.sum(CASE WHEN b.v IS NOT NULL THEN b.n END)"
						 " OVER (PARTITION BY %s ORDER BY b.v ROWS UNBOUNDED PRECEDING) AS cum",
						 PanesKeyList("b", nkeys, false), PanesKeyList("b", nkeys, false));
	else
		appendStringInfoString(&windows, "\n                  FROM (SELECT b.*");
	appendStringInfo(&windows, "\n                          FROM %s b) r"
					 "\n                 GROUP BY %s) y)",
					 values_rows(values, spec, hop), PanesKeyList("r", nkeys, false));
	initStringInfo(&targets);
	initStringInfo(&exprs);
	PanesTargets(query->targetList, (Node *(*) (Node *, void *)) to_values_mutator, &mc,
				 deparse_context_for("x", values_relid), &targets, &exprs);
	view_relid = PanesCreateView(nspid, name, targets.data, windows.data,
								 query->havingQual == NULL ? NULL :
								 deparse_expression(to_values_mutator(copyObject(query->havingQual), &mc),
													deparse_context_for("x", values_relid), true, false),
								 hop != NULL && !retention_null ?
								 windows_kept(spec, hop, values_relid, watermark_delay, delay_null,
											  retention) : NULL);
	SPI_finish();
	return view_relid;
}
