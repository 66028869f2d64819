/*-------------------------------------------------------------------------
 *
 * query.c
 *	  Analysis of a continuous view's defining query.
 *
 * A continuous view is defined by a plain query,
 *	SELECT ... FROM table [WHERE ...] GROUP BY ... [HAVING ...]
 * analysed by PostgreSQL's own parser.  The query is kept as an ordinary
 * view (the view's *definition*, flowstate.view_<id>_query), so that it
 * follows renames, blocks dropping the columns it uses, and remains the
 * batch query the continuous view must equal.  Workers read it back from
 * the relcache.
 *
 * This file refuses what cannot be maintained incrementally, naming the
 * construct; finds the group keys, the distinct aggregate calls and a
 * tumbling window among the keys; lays out the group state (layout.h); and
 * writes the SQL of the view users read, which rewrites the target list and
 * HAVING over the state table's columns k1..kn (keys) and a1..am
 * (finalized aggregates).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/catalog.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "parser/scansup.h"
#include "rewrite/rewriteHandler.h"
#include "rewrite/rewriteManip.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/timestamp.h"

#include "aggregates/aggregate.h"
#include "state/group.h"
#include "query/query.h"
#include "state/state_table.h"

#define SUPPORTED_SHAPE_HINT \
	"A continuous view is defined by SELECT ... FROM table [WHERE ...] GROUP BY ... [HAVING ...]."

static void
refuse(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s not supported in a continuous view", what),
			 errhint(SUPPORTED_SHAPE_HINT)));
}

/*
 * QueryParse parses and analyses the text of a defining query, which must
 * be one SELECT statement; *raw gets a copy of its raw parse tree.
 */
Query *
QueryParse(const char *text, RawStmt **raw)
{
	List	   *stmts = pg_parse_query(text);
	RawStmt    *stmt;

	if (list_length(stmts) != 1 || !IsA(((RawStmt *) linitial(stmts))->stmt, SelectStmt))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the query of a continuous view must be a single SELECT statement"),
				 errhint(SUPPORTED_SHAPE_HINT)));
	stmt = linitial(stmts);
	if (raw)
		*raw = copyObject(stmt);
	return parse_analyze_fixedparams(stmt, text, NULL, 0, NULL);
}

/*
 * Functions of PostgreSQL that are stable, not immutable, only because
 * their result depends on the session's TimeZone.  A continuous view
 * evaluates them in the time zone of the session that created it
 * (flowstate.view.time_zone), as its batch query does run in that zone.
 */
static bool
depends_on_time_zone_only(Oid func)
{
	switch (func)
	{
		case F_DATE_TRUNC_TEXT_TIMESTAMPTZ:
		case F_DATE_TRUNC_TEXT_TIMESTAMPTZ_TEXT:
		case F_DATE_PART_TEXT_TIMESTAMPTZ:
		case F_EXTRACT_TEXT_TIMESTAMPTZ:
		case F_DATE_TIMESTAMPTZ:
		case F_TIMESTAMPTZ_DATE:
		case F_TIMESTAMP_TIMESTAMPTZ:
		case F_TIMESTAMPTZ_TIMESTAMP:
		case F_TIME_TIMESTAMPTZ:
		case F_TIMETZ_TIMESTAMPTZ:
		case F_TIMESTAMPTZ_DATE_TIME:
		case F_TIMESTAMPTZ_PL_INTERVAL:
		case F_TIMESTAMPTZ_MI_INTERVAL:
		case F_INTERVAL_PL_TIMESTAMPTZ:
		case F_AGE_TIMESTAMPTZ_TIMESTAMPTZ:
		case F_MAKE_TIMESTAMPTZ_INT4_INT4_INT4_INT4_INT4_FLOAT8:
		case F_DATE_EQ_TIMESTAMPTZ:
		case F_DATE_NE_TIMESTAMPTZ:
		case F_DATE_LT_TIMESTAMPTZ:
		case F_DATE_LE_TIMESTAMPTZ:
		case F_DATE_GT_TIMESTAMPTZ:
		case F_DATE_GE_TIMESTAMPTZ:
		case F_TIMESTAMPTZ_EQ_DATE:
		case F_TIMESTAMPTZ_NE_DATE:
		case F_TIMESTAMPTZ_LT_DATE:
		case F_TIMESTAMPTZ_LE_DATE:
		case F_TIMESTAMPTZ_GT_DATE:
		case F_TIMESTAMPTZ_GE_DATE:
		case F_TIMESTAMP_EQ_TIMESTAMPTZ:
		case F_TIMESTAMP_NE_TIMESTAMPTZ:
		case F_TIMESTAMP_LT_TIMESTAMPTZ:
		case F_TIMESTAMP_LE_TIMESTAMPTZ:
		case F_TIMESTAMP_GT_TIMESTAMPTZ:
		case F_TIMESTAMP_GE_TIMESTAMPTZ:
		case F_TIMESTAMPTZ_EQ_TIMESTAMP:
		case F_TIMESTAMPTZ_NE_TIMESTAMP:
		case F_TIMESTAMPTZ_LT_TIMESTAMP:
		case F_TIMESTAMPTZ_LE_TIMESTAMP:
		case F_TIMESTAMPTZ_GT_TIMESTAMP:
		case F_TIMESTAMPTZ_GE_TIMESTAMP:
			return true;
		default:
			return false;
	}
}

static bool
time_zone_checker(Oid func_id, void *context)
{
	return depends_on_time_zone_only(func_id);
}

static bool
time_zone_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, time_zone_walker, context, 0);
	if (check_functions_in_node(node, time_zone_checker, context))
		return true;
	return expression_tree_walker(node, time_zone_walker, context);
}

/*
 * QueryUsesTimeZone tells whether a defining query calls a function whose
 * result depends on the time zone the view pins.
 */
bool
QueryUsesTimeZone(Query *query)
{
	return time_zone_walker((Node *) query, NULL);
}

/* A function a view cannot evaluate once per row: not immutable, nor one of those. */
static bool
mutable_checker(Oid func_id, void *context)
{
	if (func_volatile(func_id) != PROVOLATILE_IMMUTABLE &&
		!depends_on_time_zone_only(func_id))
	{
		*(Oid *) context = func_id;
		return true;
	}
	return false;
}

/*
 * Find such a function, the innermost first (now() in now() - interval
 * '1 hour'), or another construct whose value changes between evaluations
 * (CURRENT_TIMESTAMP, nextval): func is then InvalidOid.
 */
static bool
find_mutable_walker(Node *node, Oid *func)
{
	if (node == NULL)
		return false;
	if (IsA(node, SQLValueFunction) || IsA(node, NextValueExpr))
		return true;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, find_mutable_walker, func, 0);
	if (expression_tree_walker(node, find_mutable_walker, func))
		return true;
	return check_functions_in_node(node, mutable_checker, func);
}

/* Refuse an expression whose value could change between two evaluations. */
static void
check_immutable(Node *expr, const char *where)
{
	Oid			func = InvalidOid;

	if (!contain_mutable_functions(expr) || !find_mutable_walker(expr, &func))
		return;
	if (OidIsValid(func))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("function %s is not immutable and cannot be used %s of a continuous view",
						format_procedure(func), where),
				 errdetail("A continuous view evaluates each row once, when it arrives; the batch query evaluates it when it runs."),
				 errhint("Use immutable functions only, as in an index expression.")));
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("expressions %s of a continuous view must be immutable", where),
			 errhint("Use immutable functions only, as in an index expression.")));
}

static bool
system_column_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var) && ((Var *) node)->varattno < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("system columns are not supported in a continuous view"),
				 errhint(SUPPORTED_SHAPE_HINT)));
	return expression_tree_walker(node, system_column_walker, context);
}

/* Collect the distinct aggregate calls of an expression. */
static bool collect_aggrefs_walker(Node *node, List **aggrefs);

/*
 * QueryCollectAggrefs appends to *aggrefs the aggregate calls of an
 * expression, once each (equal calls are one).
 */
void
QueryCollectAggrefs(Node *node, List **aggrefs)
{
	(void) collect_aggrefs_walker(node, aggrefs);
}

static bool
collect_aggrefs_walker(Node *node, List **aggrefs)
{
	ListCell   *lc;

	if (node == NULL)
		return false;
	if (IsA(node, Aggref))
	{
		foreach(lc, *aggrefs)
		{
			if (equal(lfirst(lc), node))
				return false;
		}
		*aggrefs = lappend(*aggrefs, node);
		return false;			/* aggregates do not nest */
	}
	return expression_tree_walker(node, collect_aggrefs_walker, aggrefs);
}

static void
check_aggref(Aggref *aggref)
{
	AggSpec		spec;

	if (aggref->aggkind != AGGKIND_NORMAL)
		refuse("ordered-set and hypothetical-set aggregates are");
	if (aggref->aggdistinct != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("DISTINCT in aggregate arguments is not supported in a continuous view"),
				 errhint("Keep the distinct values as a GROUP BY key of another continuous view.")));
	if (aggref->aggorder != NIL)
		refuse("ORDER BY in aggregate arguments is");
	if (aggref->agglevelsup != 0)
		refuse("outer-level aggregates are");
	if (!AggIdentify(aggref, &spec))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("aggregate function %s is not supported in a continuous view",
						format_procedure(aggref->aggfnoid)),
				 errdetail("A continuous view adds partial states together: %s.",
						   AggGenericRefusal(aggref->aggfnoid, list_length(aggref->args)) ?
						   AggGenericRefusal(aggref->aggfnoid, list_length(aggref->args)) :
						   "its state cannot be kept"),
				 errhint("Give the aggregate a combine function (CREATE AGGREGATE ... COMBINEFUNC, "
						 "with SERIALFUNC and DESERIALFUNC for an internal state), or use one of: %s.",
						 AggSupportedList())));
	check_immutable((Node *) aggref->args, "in the aggregate arguments");
	check_immutable((Node *) aggref->aggfilter, "in FILTER clauses");
}

/*
 * Return the source relation's range table entry, refusing anything else;
 * a join to a dimension goes into *join (join.c).
 */
static RangeTblEntry *
source_rte(Query *query, Index *rti, JoinSpec *join, bool check)
{
	FromExpr   *jt = query->jointree;
	Node	   *from;
	RangeTblEntry *rte;

	memset(join, 0, sizeof(JoinSpec));
	if (jt == NULL || jt->fromlist == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view needs a table in FROM"),
				 errhint(SUPPORTED_SHAPE_HINT)));
	if (list_length(jt->fromlist) > 1 && IsA(linitial(jt->fromlist), JoinExpr))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("hopping, cumulating and session windows over a join are not supported"),
				 errhint("Group the join by flowstate.tumble(ts, size), or keep the window's view over the stream alone.")));
	if (list_length(jt->fromlist) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view joins with JOIN ... ON, not with a list of tables in FROM"),
				 errhint("Write FROM stream s JOIN dim d ON d.key = s.column.")));
	from = linitial(jt->fromlist);
	if (IsA(from, JoinExpr))
		return JoinAnalyze(query, (JoinExpr *) from, rti, join, check);
	if (!IsA(from, RangeTblRef))
		refuse("this FROM clause is");
	*rti = ((RangeTblRef *) from)->rtindex;
	rte = rt_fetch(*rti, query->rtable);

	switch (rte->rtekind)
	{
		case RTE_RELATION:
			break;
		case RTE_SUBQUERY:
			refuse("subqueries in FROM are");
			break;
		case RTE_FUNCTION:
		case RTE_TABLEFUNC:
			refuse("functions in FROM are");
			break;
		case RTE_VALUES:
			refuse("VALUES in FROM is");
			break;
		default:
			refuse("this FROM clause is");
			break;
	}
	return rte;
}

/* Refuse a source relation the decoding worker cannot follow. */
static void
check_source(Oid relid, bool inh)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	const char *name = RelationGetRelationName(rel);

	switch (rel->rd_rel->relkind)
	{
		case RELKIND_RELATION:
			break;
		case RELKIND_VIEW:
		case RELKIND_MATVIEW:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is a view; a continuous view reads a table", name),
					 errhint("Define the continuous view over the table that \"%s\" reads.", name)));
			break;
		case RELKIND_PARTITIONED_TABLE:
			/* its rows are its partitions': ONLY reads none */
			if (!inh)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("a continuous view cannot read partitioned table \"%s\" with ONLY", name),
						 errdetail("FROM ONLY of a partitioned table reads none of the rows of its partitions."),
						 errhint("Write FROM %s without ONLY.", quote_identifier(name))));
			break;
		case RELKIND_FOREIGN_TABLE:
			if (!QueryIsStream(relid))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("foreign table \"%s\" cannot be the source of a continuous view", name),
						 errhint("Continuous views read ordinary tables and Kafka streams (foreign tables of flowstate_kafka).")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" cannot be the source of a continuous view", name),
					 errhint("Continuous views read ordinary tables.")));
	}
	if (IsCatalogRelation(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("system catalog \"%s\" cannot be the source of a continuous view", name),
				 errhint("Continuous views read user tables.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("temporary table \"%s\" cannot be the source of a continuous view", name),
				 errhint("Continuous views follow the WAL; use a permanent table.")));
	if (rel->rd_rel->relpersistence == RELPERSISTENCE_UNLOGGED)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("unlogged table \"%s\" cannot be the source of a continuous view", name),
				 errdetail("Changes to unlogged tables are not written to the WAL."),
				 errhint("Run ALTER TABLE %s SET LOGGED.", quote_identifier(name))));
	/* (relhassubclass stays set after the last child is dropped) */
	if (inh && rel->rd_rel->relkind == RELKIND_RELATION &&
		find_inheritance_children(relid, AccessShareLock) != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("table \"%s\" has inheritance children, which a continuous view does not follow", name),
				 errhint("Write FROM ONLY %s, or define a continuous view per child table.",
						 quote_identifier(name))));
	relation_close(rel, AccessShareLock);
}

/*
 * QueryCheck refuses a defining query flowstate cannot maintain, with an
 * error that names the construct.
 */
void
QueryCheck(Query *query)
{
	Index		rti;
	RangeTblEntry *rte;
	List	   *aggrefs = NIL;
	ListCell   *lc;
	int			nkeys = 0;
	JoinSpec	join;

	if (query->commandType != CMD_SELECT || query->utilityStmt != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the query of a continuous view must be a SELECT statement"),
				 errhint(SUPPORTED_SHAPE_HINT)));
	if (query->cteList != NIL)
		refuse("WITH is");
	if (query->setOperations != NULL)
		refuse("UNION, INTERSECT and EXCEPT are");
	if (query->hasWindowFuncs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("window functions are not supported in a continuous view"),
				 errhint("Group by a window of event time instead, such as flowstate.tumble(ts, '1 minute').")));
	if (query->hasSubLinks)
		refuse("subqueries are");
	if (query->hasDistinctOn)
		refuse("DISTINCT ON is");
	if (query->distinctClause != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("DISTINCT is not supported in a continuous view"),
				 errhint("GROUP BY the same columns instead.")));
	if (query->sortClause != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ORDER BY is not supported in a continuous view"),
				 errhint("Order the rows when you read the view.")));
	if (query->limitCount != NULL || query->limitOffset != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("LIMIT and OFFSET are not supported in a continuous view"),
				 errhint("Limit the rows when you read the view.")));
	if (query->rowMarks != NIL || query->hasForUpdate)
		refuse("FOR UPDATE and FOR SHARE are");
	if (query->hasTargetSRFs)
		refuse("set-returning functions in the select list are");
	if (query->groupingSets != NIL)
		refuse("GROUPING SETS, ROLLUP and CUBE are");
	if (query->hasModifyingCTE || query->hasRecursive)
		refuse("WITH is");

	rte = source_rte(query, &rti, &join, true);
	check_source(rte->relid, rte->inh);
	if (join.present)
	{
		(void) system_column_walker((Node *) join.quals, NULL);
		(void) system_column_walker((Node *) join.value, NULL);
		check_immutable((Node *) join.value, "in the join");
		check_immutable((Node *) join.quals, "in the join");
	}

	if (query->groupClause == NIL && !query->hasAggs)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view needs GROUP BY or an aggregate"),
				 errhint(SUPPORTED_SHAPE_HINT)));

	(void) system_column_walker((Node *) query->targetList, NULL);
	(void) system_column_walker(query->jointree->quals, NULL);
	(void) system_column_walker(query->havingQual, NULL);
	check_immutable(query->jointree->quals, "in the WHERE clause");

	foreach(lc, query->groupClause)
	{
		SortGroupClause *sgc = lfirst(lc);
		Node	   *expr = get_sortgroupclause_expr(sgc, query->targetList);
		Oid			type = exprType(expr);
		bool		bitwise;

		check_immutable(expr, "in GROUP BY");
		if (!GroupKeyTypeUsable(type, exprCollation(expr), &bitwise))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("type %s cannot be a GROUP BY key of a continuous view",
							format_type_be(type)),
					 errhint("Group by expressions of types with a hash equality, such as integers, text or timestamps.")));
		nkeys++;
	}
	if (nkeys > FLOWSTATE_MAX_KEYS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a continuous view can have at most %d GROUP BY keys", FLOWSTATE_MAX_KEYS),
				 errhint("Group by fewer expressions.")));

	(void) collect_aggrefs_walker((Node *) query->targetList, &aggrefs);
	(void) collect_aggrefs_walker(query->havingQual, &aggrefs);
	if (list_length(aggrefs) > FLOWSTATE_MAX_AGGS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a continuous view can have at most %d distinct aggregate calls",
						FLOWSTATE_MAX_AGGS),
				 errhint("Split it into several continuous views.")));
	foreach(lc, aggrefs)
		check_aggref(lfirst(lc));
}

static Oid
tumble_function(Oid argtype)
{
	Oid			args[2];
	List	   *name = list_make2(makeString("flowstate"), makeString("tumble"));

	args[0] = argtype;
	args[1] = INTERVALOID;
	return LookupFuncName(name, 2, args, true);
}

static Interval *
const_interval(Node *node)
{
	if (node == NULL || !IsA(node, Const) || ((Const *) node)->constisnull ||
		((Const *) node)->consttype != INTERVALOID)
		return NULL;
	return DatumGetIntervalP(((Const *) node)->constvalue);
}

/* The length of a date_trunc unit, or NULL for one we do not know. */
static Interval *
trunc_unit_interval(Node *node)
{
	char	   *unit;
	char	   *lower;
	int			val;
	const char *len;

	if (node == NULL || !IsA(node, Const) || ((Const *) node)->constisnull)
		return NULL;
	unit = TextDatumGetCString(((Const *) node)->constvalue);
	lower = downcase_truncate_identifier(unit, strlen(unit), false);
	if (DecodeUnits(0, lower, &val) != UNITS)
		return NULL;
	switch (val)
	{
		case DTK_MICROSEC:
			len = "1 microsecond";
			break;
		case DTK_MILLISEC:
			len = "1 millisecond";
			break;
		case DTK_SECOND:
			len = "1 second";
			break;
		case DTK_MINUTE:
			len = "1 minute";
			break;
		case DTK_HOUR:
			len = "1 hour";
			break;
		case DTK_DAY:
			len = "1 day";
			break;
		case DTK_WEEK:
			len = "7 days";
			break;
		case DTK_MONTH:
			len = "1 month";
			break;
		case DTK_QUARTER:
			len = "3 months";
			break;
		case DTK_YEAR:
			len = "1 year";
			break;
		case DTK_DECADE:
			len = "10 years";
			break;
		case DTK_CENTURY:
			len = "100 years";
			break;
		case DTK_MILLENNIUM:
			len = "1000 years";
			break;
		default:
			return NULL;
	}
	return DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(len),
												 ObjectIdGetDatum(InvalidOid),
												 Int32GetDatum(-1)));
}

/* Recognise a GROUP BY expression that computes the start of a tumbling window. */
static bool
detect_window(Node *expr, WindowSpec *w)
{
	FuncExpr   *fe;
	Oid			fid;

	if (!IsA(expr, FuncExpr))
		return false;
	fe = (FuncExpr *) expr;
	fid = fe->funcid;
	memset(w, 0, sizeof(WindowSpec));

	if (fid == F_DATE_BIN_INTERVAL_TIMESTAMPTZ_TIMESTAMPTZ ||
		fid == F_DATE_BIN_INTERVAL_TIMESTAMP_TIMESTAMP)
	{
		w->size = const_interval(linitial(fe->args));
		w->ts_expr = lsecond(fe->args);
		w->range_ok = true;
	}
	else if (list_length(fe->args) == 2 &&
			 (fid == tumble_function(TIMESTAMPTZOID) || fid == tumble_function(TIMESTAMPOID)))
	{
		w->size = const_interval(lsecond(fe->args));
		w->ts_expr = linitial(fe->args);
		w->range_ok = true;
	}
	else if (fid == F_DATE_TRUNC_TEXT_TIMESTAMP)
	{
		w->size = trunc_unit_interval(linitial(fe->args));
		w->ts_expr = lsecond(fe->args);
		w->range_ok = true;
	}
	else
		return false;

	if (w->size == NULL)
		return false;
	if (w->size->month == 0)
		w->size_us = w->size->day * USECS_PER_DAY + w->size->time;
	if (w->size_us <= 0 && w->size->month == 0)
		return false;
	w->present = true;
	return true;
}

/*
 * QueryDescribe fills the query-derived part of a ViewDef: the source, the
 * WHERE clause, group keys, aggregate calls, window and state layout.  The
 * query has passed QueryCheck.
 */
void
QueryDescribe(Query *query, ViewDef *def)
{
	ViewLayout *layout = &def->layout;
	ListCell   *lc;
	RangeTblEntry *rte;

	def->query = query;
	rte = source_rte(query, &def->source_rti, &def->join, false);
	def->source_relid = rte->relid;
	def->where = (Expr *) query->jointree->quals;
	def->key_exprs = NIL;
	def->aggrefs = NIL;
	memset(layout, 0, sizeof(ViewLayout));
	memset(&def->window, 0, sizeof(WindowSpec));

	foreach(lc, query->groupClause)
	{
		Node	   *expr = get_sortgroupclause_expr(lfirst(lc), query->targetList);
		KeySpec    *key = &layout->keys[layout->nkeys];

		key->type = exprType(expr);
		key->typmod = exprTypmod(expr);
		key->collation = exprCollation(expr);
		get_typlenbyvalalign(key->type, &key->typlen, &key->typbyval, &key->typalign);
		(void) GroupKeyTypeUsable(key->type, key->collation, &key->bitwise);

		if (!def->window.present && detect_window(expr, &def->window))
		{
			def->window.keyno = layout->nkeys;
			key->is_window = true;
		}
		def->key_exprs = lappend(def->key_exprs, expr);
		layout->nkeys++;
	}
	layout->scalar = (query->groupClause == NIL);

	(void) collect_aggrefs_walker((Node *) query->targetList, &def->aggrefs);
	(void) collect_aggrefs_walker(query->havingQual, &def->aggrefs);
	foreach(lc, def->aggrefs)
	{
		Aggref	   *aggref = lfirst(lc);
		AggSpec    *spec = &layout->aggs[layout->naggs];

		if (!AggIdentify(aggref, spec))
			elog(ERROR, "aggregate %u is not native", aggref->aggfnoid);
		/* aggregates over the same input may share fields (layout.h) */
		spec->input = layout->naggs;
		for (int j = 0; j < layout->naggs; j++)
		{
			Aggref	   *other = list_nth(def->aggrefs, j);

			if (equal(other->args, aggref->args) && equal(other->aggfilter, aggref->aggfilter))
			{
				spec->input = j;
				break;
			}
		}
		layout->naggs++;
	}
	AggLayoutPlace(layout);
}

/*
 * QueryOfDefinition returns (a copy of) the query of a view's definition,
 * or NULL if it was dropped (or is no view).
 */
Query *
QueryOfDefinition(Oid def_relid)
{
	Relation	rel = try_relation_open(def_relid, AccessShareLock);
	Query	   *query;

	if (rel == NULL)
		return NULL;
	if (rel->rd_rel->relkind != RELKIND_VIEW)
	{
		relation_close(rel, AccessShareLock);
		return NULL;
	}
	query = copyObject(get_view_query(rel));

	relation_close(rel, AccessShareLock);
	return query;
}

/* Replace group keys and aggregate calls by the state table's columns. */
typedef struct ToStateContext
{
	ViewDef    *def;
} ToStateContext;

static Node *
to_state_mutator(Node *node, ToStateContext *ctx)
{
	ViewDef    *def = ctx->def;
	ListCell   *lc;
	int			i;

	if (node == NULL)
		return NULL;
	if (IsA(node, Aggref))
	{
		i = 0;
		foreach(lc, def->aggrefs)
		{
			if (equal(lfirst(lc), node))
			{
				Aggref	   *a = lfirst(lc);

				return (Node *) makeVar(1, 1 + def->layout.nkeys + 1 + i,
										a->aggtype, -1, a->aggcollid, 0);
			}
			i++;
		}
		elog(ERROR, "aggregate call missing from the view's state");
	}
	i = 0;
	foreach(lc, def->key_exprs)
	{
		if (equal(lfirst(lc), node))
		{
			Node	   *k = lfirst(lc);

			return (Node *) makeVar(1, 1 + 1 + i, exprType(k), exprTypmod(k),
									exprCollation(k), 0);
		}
		i++;
	}
	return expression_tree_mutator(node, to_state_mutator, ctx);
}

/* The column definitions k1..kn of a view's keys, each after sep. */
static void
append_key_columns(StringInfo buf, const ViewLayout *layout, const char *sep)
{
	for (int i = 0; i < layout->nkeys; i++)
	{
		const KeySpec *k = &layout->keys[i];
		char		name[16];

		snprintf(name, sizeof(name), "k%d", i + 1);
		StateAppendColumn(buf, sep, name, k->type, k->typmod, k->collation);
	}
}

/* The column definitions a1..am of a view's aggregates, the first after first_sep. */
static void
append_agg_columns(StringInfo buf, const ViewLayout *layout, const char *first_sep)
{
	for (int i = 0; i < layout->naggs; i++)
	{
		const AggSpec *a = &layout->aggs[i];
		char		name[16];

		snprintf(name, sizeof(name), "a%d", i + 1);
		StateAppendColumn(buf, i == 0 ? first_sep : ", ", name, a->restype, a->restypmod,
						  a->rescollation);
	}
}

/* The call of flowstate.unflushed() with its column definitions. */
static void
append_unflushed(StringInfo buf, ViewDef *def, const char *state_table)
{
	appendStringInfo(buf, "flowstate.unflushed(%s::regclass) AS u(gid bigint, live boolean",
					 quote_literal_cstr(state_table));
	append_key_columns(buf, &def->layout, ", ");
	append_agg_columns(buf, &def->layout, ", ");
	appendStringInfoChar(buf, ')');
}

/*
 * The groups shared memory holds, with their keys and their place in the
 * reader's capture (flowstate.unflushed_states), and, for each, its
 * aggregates finalized (flowstate.unflushed_aggregates).
 */
static void
append_unflushed_states(StringInfo buf, ViewDef *def, const char *state_table)
{
	appendStringInfo(buf, "flowstate.unflushed_states(%s::regclass) AS u(gid bigint, live boolean",
					 quote_literal_cstr(state_table));
	append_key_columns(buf, &def->layout, ", ");
	appendStringInfoString(buf, ", i bigint)");
	if (def->layout.naggs == 0)
		return;
	appendStringInfo(buf, "\n          CROSS JOIN LATERAL flowstate.unflushed_aggregates(%s::regclass, u.i) AS f(",
					 quote_literal_cstr(state_table));
	append_agg_columns(buf, &def->layout, "");
	appendStringInfoChar(buf, ')');
}

static void
append_state_columns(StringInfo buf, ViewDef *def, const char *key_alias, const char *agg_alias)
{
	bool		first = true;

	for (int i = 0; i < def->layout.nkeys; i++)
	{
		appendStringInfo(buf, "%s%s.k%d", first ? "" : ", ", key_alias, i + 1);
		first = false;
	}
	for (int i = 0; i < def->layout.naggs; i++)
	{
		appendStringInfo(buf, "%s%s.a%d", first ? "" : ", ", agg_alias, i + 1);
		first = false;
	}
	if (first)
		appendStringInfoString(buf, "NULL");
}

/* The view's columns computed from a state table's columns, alias x. */
static void
append_view_columns(StringInfo buf, ViewDef *def)
{
	ToStateContext ctx = {def};
	List	   *dpcontext = deparse_context_for("x", def->state_relid);
	ListCell   *lc;
	bool		first = true;

	foreach(lc, def->query->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		Node	   *expr;

		if (tle->resjunk)
			continue;
		expr = to_state_mutator((Node *) copyObject(tle->expr), &ctx);
		appendStringInfo(buf, "%s%s AS %s", first ? "" : ", ",
						 deparse_expression(expr, dpcontext, true, false),
						 quote_identifier(tle->resname ? tle->resname : "?column?"));
		first = false;
	}
}

/* The view's HAVING over a state table's columns, alias x, as a WHERE. */
static void
append_view_having(StringInfo buf, ViewDef *def)
{
	ToStateContext ctx = {def};
	List	   *dpcontext = deparse_context_for("x", def->state_relid);

	if (def->query->havingQual != NULL)
	{
		Node	   *having = to_state_mutator(copyObject(def->query->havingQual), &ctx);

		appendStringInfo(buf, "\n WHERE %s", deparse_expression(having, dpcontext, true, false));
	}
}

/*
 * QueryFinalSql is a query of the rows of a windowed view whose window
 * starts after $1 and at or before $2, as its state table holds them (in
 * the flush that makes them final: they are all there), in the view's
 * columns.
 */
char *
QueryFinalSql(ViewDef *def, const char *state_table)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	append_view_columns(&buf, def);
	appendStringInfoString(&buf, "\n  FROM (SELECT ");
	append_state_columns(&buf, def, "s", "s");
	appendStringInfo(&buf, " FROM %s s WHERE s.k%d OPERATOR(pg_catalog.>) $1 AND s.k%d OPERATOR(pg_catalog.<=) $2) x",
					 state_table, def->window.keyno + 1, def->window.keyno + 1);
	append_view_having(&buf, def);
	return buf.data;
}

/*
 * QueryViewSql writes the query of the view users read: the groups of the
 * state table that shared memory holds no newer state for, plus the groups
 * shared memory holds, with the defining query's target list and HAVING
 * computed over them.
 *
 * With partial (the SQL objects of 0.5.0 on): a state table row is taken
 * when flowstate.durable() says that shared memory holds nothing newer for
 * it (nor hides the table, after a TRUNCATE); the groups of shared memory
 * come with their keys only, and flowstate.unflushed_aggregates()
 * finalizes, beside each, the groups a condition on the keys lets through:
 * a point read finalizes its own groups, not all of them.
 *
 * Without (earlier SQL objects): flowstate.unflushed() finalizes every
 * group of shared memory, and returns gid -1 when the state table's rows
 * are all gone but not yet deleted (a truncated source).  The state table
 * exists.
 */
char *
QueryViewSql(ViewDef *def, const char *state_table, bool partial)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "SELECT ");
	append_view_columns(&buf, def);

	appendStringInfoString(&buf, "\n  FROM (SELECT ");
	append_state_columns(&buf, def, "s", "s");
	if (partial)
	{
		appendStringInfo(&buf, " FROM %s s\n         WHERE flowstate.durable(%s::regclass, s.gid)",
						 state_table, quote_literal_cstr(state_table));
		appendStringInfoString(&buf, "\n        UNION ALL\n        SELECT ");
		append_state_columns(&buf, def, "u", "f");
		appendStringInfoString(&buf, "\n          FROM ");
		append_unflushed_states(&buf, def, state_table);
		appendStringInfoString(&buf, "\n         WHERE u.live) x");
	}
	else
	{
		appendStringInfo(&buf, " FROM %s s\n         WHERE NOT EXISTS (SELECT FROM ", state_table);
		append_unflushed(&buf, def, state_table);
		appendStringInfoString(&buf, " WHERE u.gid = s.gid)\n           AND NOT EXISTS (SELECT FROM ");
		append_unflushed(&buf, def, state_table);
		appendStringInfoString(&buf, " WHERE u.gid = -1)\n        UNION ALL\n        SELECT ");
		append_state_columns(&buf, def, "u", "u");
		appendStringInfoString(&buf, " FROM ");
		append_unflushed(&buf, def, state_table);
		appendStringInfoString(&buf, " WHERE u.live) x");
	}

	append_view_having(&buf, def);
	return buf.data;
}

/* Which state table columns an expression reads: keys, aggregates. */
typedef struct ReadsContext
{
	int			nkeys;
	bool		keys;
	bool		aggs;
} ReadsContext;

static bool
reads_walker(Node *node, ReadsContext *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varattno > 1 && var->varattno <= 1 + ctx->nkeys)
			ctx->keys = true;
		else if (var->varattno > 1 + ctx->nkeys)
			ctx->aggs = true;
		return false;
	}
	return expression_tree_walker(node, reads_walker, ctx);
}

/*
 * QueryColumnExpr returns the expression of the view's column colno (from
 * 0) over the columns of its state table (gid, k1..kn, a1..am, as Vars of
 * range table entry 1), and tells whether it reads group keys and
 * aggregates; NULL if the view has no such column.
 */
Expr *
QueryColumnExpr(ViewDef *def, int colno, bool *reads_keys, bool *reads_aggs)
{
	ToStateContext ctx = {def};
	ReadsContext reads = {def->layout.nkeys, false, false};
	ListCell   *lc;
	int			n = 0;

	foreach(lc, def->query->targetList)
	{
		TargetEntry *tle = lfirst(lc);
		Node	   *expr;

		if (tle->resjunk)
			continue;
		if (n++ < colno)
			continue;
		expr = to_state_mutator((Node *) copyObject(tle->expr), &ctx);
		(void) reads_walker(expr, &reads);
		*reads_keys = reads.keys;
		*reads_aggs = reads.aggs;
		return (Expr *) expr;
	}
	return NULL;
}

/* Deparse an expression of the source over an alias of the source table. */
static char *
source_expr_sql(ViewDef *def, Node *expr, const char *alias)
{
	Node	   *copy = copyObject(expr);

	if (def->source_rti != 1)
		ChangeVarNodes(copy, def->source_rti, 1, 0);
	return deparse_expression(copy, deparse_context_for(alias, def->source_relid),
							  true, false);
}

/*
 * QueryKeySql writes a group key's expression over the source table.
 */
char *
QueryKeySql(ViewDef *def, int keyno, const char *alias)
{
	return source_expr_sql(def, list_nth(def->key_exprs, keyno), alias);
}

/*
 * QueryTsSql writes the event time of the view's window over the source.
 */
char *
QueryTsSql(ViewDef *def, const char *alias)
{
	Assert(def->window.present);
	return source_expr_sql(def, def->window.ts_expr, alias);
}

/*
 * QueryIsStream tells whether a relation is a Kafka stream: a foreign table
 * of the flowstate_kafka wrapper.
 */
bool
QueryIsStream(Oid relid)
{
	ForeignTable *table;
	ForeignServer *server;
	ForeignDataWrapper *fdw;

	if (get_rel_relkind(relid) != RELKIND_FOREIGN_TABLE)
		return false;
	table = GetForeignTable(relid);
	server = GetForeignServer(table->serverid);
	fdw = GetForeignDataWrapper(server->fdwid);
	return strcmp(fdw->fdwname, KAFKA_FDW_NAME) == 0;
}
