/*-------------------------------------------------------------------------
 *
 * join.c
 *	  The join of a continuous view's source to a dimension table.
 *
 * A continuous view over a Kafka stream may join each message to one row
 * of an ordinary table, its dimension:
 *
 *	FROM stream s [LEFT] JOIN dim d ON d.key = <expression of s> [AND ...]
 *
 * The match is found through a btree index led by d.key, so the dimension
 * must have at most one row per message: either d.key has a unique index
 * of its own (a lookup join), or the dimension is a flowstate history and
 * ON holds the range of its versions, d.valid_from <= <time of s> AND
 * <time of s> < d.valid_to (a temporal join: the version valid at the
 * message's time).  The rest of ON filters the candidates.  A message
 * reads the dimension when it is processed (engine/lookup.c): the view is
 * the batch query over the messages, each joined to the dimension as it
 * was then.
 *
 * A view over a table may join a table (a lookup join) or a history (a
 * temporal join) the same way; the decoder reads it as of each commit
 * (table_join states what that needs).
 *
 * JoinAnalyze finds the two sides and the key; with check, it refuses
 * what cannot be maintained, with an error that names the fix.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"

#include "query/query.h"

#define JOIN_SHAPE_HINT \
	"Join a Kafka stream to one table on that table's key: FROM stream s JOIN dim d ON d.key = s.column."

static Node *
strip_relabel(Node *node)
{
	while (node != NULL && IsA(node, RelabelType))
		node = (Node *) ((RelabelType *) node)->arg;
	return node;
}

/* Whether node is a (relabelled) column of the dimension; its number. */
static bool
dimension_column(Node *node, Index rti, AttrNumber *attno)
{
	node = strip_relabel(node);
	if (node == NULL || !IsA(node, Var) || ((Var *) node)->varno != rti ||
		((Var *) node)->varlevelsup != 0 || ((Var *) node)->varattno <= 0)
		return false;
	*attno = ((Var *) node)->varattno;
	return true;
}

/* Whether node reads the source and nothing else. */
static bool
of_source_only(Node *node, Index rti)
{
	Bitmapset  *varnos = pull_varnos(NULL, node);

	return bms_membership(varnos) == BMS_SINGLETON && bms_is_member(rti, varnos);
}

/*
 * JoinKeyIndex returns the btree index of dim led by keycol that compares
 * with opno (keycol = value) in collation, unique on keycol alone if there
 * is one such;
 * InvalidOid if none.  With partial, only an index unique on keycol alone
 * with a predicate (a history's index of its current versions), which
 * gives at most one of the rows the key matches.
 */
Oid
JoinKeyIndex(Relation dim, AttrNumber keycol, Oid opno, Oid collation, bool partial,
			 bool *unique)
{
	List	   *indexes = RelationGetIndexList(dim);
	Oid			best = InvalidOid;
	ListCell   *lc;

	*unique = false;
	foreach(lc, indexes)
	{
		Relation	index = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index form = index->rd_index;

		if (form->indisvalid && form->indnkeyatts >= 1 && form->indkey.values[0] == keycol &&
			index->rd_rel->relam == BTREE_AM_OID &&
			(RelationGetIndexPredicate(index) == NIL) != partial &&
			(!partial || (form->indisunique && form->indnkeyatts == 1)) &&
			RelationGetIndexExpressions(index) == NIL &&
			get_op_opfamily_strategy(opno, index->rd_opfamily[0]) == BTEqualStrategyNumber &&
			(!OidIsValid(index->rd_indcollation[0]) || index->rd_indcollation[0] == collation))
		{
			bool		u = form->indisunique && form->indnkeyatts == 1;

			if (!OidIsValid(best) || (u && !*unique))
			{
				best = RelationGetRelid(index);
				*unique = u;
			}
		}
		index_close(index, AccessShareLock);
	}
	return best;
}

/* Whether relid is a flowstate history keyed by the single column key. */
static bool
history_keyed_by(Oid relid, const char *key)
{
	Oid			types[2] = {OIDOID, TEXTOID};
	Datum		args[2] = {ObjectIdGetDatum(relid), CStringGetTextDatum(key)};
	bool		found;

	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM flowstate.history"
							  " WHERE history = $1 AND key_columns = ARRAY[$2]::name[]",
							  2, types, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.history");
	found = SPI_processed > 0;
	SPI_finish();
	return found;
}

/*
 * Whether quals hold the range of a history's versions at one time of the
 * source: valid_from <= t AND t < valid_to (either way round).
 */
static bool
has_version_range(List *quals, Relation dim, Index rti, Index source_rti)
{
	AttrNumber	from = get_attnum(RelationGetRelid(dim), "valid_from");
	AttrNumber	to = get_attnum(RelationGetRelid(dim), "valid_to");
	Node	   *from_time = NULL;
	Node	   *to_time = NULL;
	ListCell   *lc;

	foreach(lc, quals)
	{
		OpExpr	   *op = lfirst(lc);
		char	   *name;
		AttrNumber	att;
		bool		dim_left;
		Node	   *other;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2)
			continue;
		name = get_opname(op->opno);
		if (name == NULL)
			continue;
		if (dimension_column(linitial(op->args), rti, &att))
		{
			dim_left = true;
			other = lsecond(op->args);
		}
		else if (dimension_column(lsecond(op->args), rti, &att))
		{
			dim_left = false;
			other = linitial(op->args);
		}
		else
			continue;
		if (!of_source_only(other, source_rti))
			continue;
		/* valid_from <= t, t >= valid_from */
		if (att == from && strcmp(name, dim_left ? "<=" : ">=") == 0)
			from_time = strip_relabel(other);
		/* t < valid_to, valid_to > t */
		else if (att == to && strcmp(name, dim_left ? ">" : "<") == 0)
			to_time = strip_relabel(other);
	}
	return from_time != NULL && to_time != NULL && equal(from_time, to_time);
}

/* Refuse a dimension the worker cannot read. */
static void
check_dimension(Relation dim)
{
	const char *name = RelationGetRelationName(dim);

	if (dim->rd_rel->relkind == RELKIND_FOREIGN_TABLE && QueryIsStream(RelationGetRelid(dim)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view cannot join two streams"),
				 errhint("Join the stream to an ordinary table, or define one view per stream.")));
	if (dim->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" cannot be the dimension of a continuous view", name),
				 errdetail("A continuous view joins its stream to an ordinary table, found by index."),
				 errhint("Join to an ordinary, non-partitioned table.")));
	if (IsCatalogRelation(dim))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("system catalog \"%s\" cannot be the dimension of a continuous view", name),
				 errhint("Join to a user table.")));
	if (dim->rd_rel->relpersistence == RELPERSISTENCE_TEMP)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("temporary table \"%s\" cannot be the dimension of a continuous view", name),
				 errhint("The view's worker cannot read this session's temporary tables; use a permanent table.")));
}

/*
 * The key equality of ON (d.key = value, either way round), removed from
 * *quals; fills the key column, the index and the operator into join.
 * Among several equalities, one whose column has a unique index, else one
 * with an index, else (a view whose index was dropped since: its rows say
 * so, lookup.c) the first: the same choice whenever the query is read.
 */
static bool
find_key(List **quals, Relation dim, Index source_rti, JoinSpec *join, bool check,
		 bool *unique)
{
	ListCell   *lc;
	ListCell   *best = NULL;
	int			best_rank = -1;
	AttrNumber	best_att = InvalidAttrNumber;
	Oid			best_opno = InvalidOid;
	Oid			best_index = InvalidOid;
	Node	   *best_value = NULL;

	foreach(lc, *quals)
	{
		OpExpr	   *op = lfirst(lc);
		AttrNumber	att;
		Node	   *value;
		Oid			opno;
		Oid			index;
		bool		u;
		int			rank;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2)
			continue;
		opno = op->opno;
		if (dimension_column(linitial(op->args), join->rti, &att))
			value = lsecond(op->args);
		else if (dimension_column(lsecond(op->args), join->rti, &att))
		{
			value = linitial(op->args);
			opno = get_commutator(opno);
			if (!OidIsValid(opno))
				continue;
		}
		else
			continue;
		if (!of_source_only(value, source_rti) || !op_mergejoinable(opno, exprType(value)))
			continue;
		index = JoinKeyIndex(dim, att, opno, op->inputcollid, false, &u);
		rank = !OidIsValid(index) ? 0 : u ? 2 : 1;
		if (rank > best_rank)
		{
			best = lc;
			best_rank = rank;
			best_att = att;
			best_opno = opno;
			best_index = index;
			best_value = value;
			*unique = u;
		}
	}
	if (best != NULL && (best_rank > 0 || !check))
	{
		OpExpr	   *op = lfirst(best);

		join->index = best_index;
		join->keycol = best_att;
		join->eq_opno = best_opno;
		join->eq_func = get_opcode(best_opno);
		join->value = (Expr *) best_value;
		join->value_type = exprType(best_value);
		join->collation = op->inputcollid;
		*quals = list_delete_cell(*quals, best);
		return true;
	}
	if (check)
	{
		const char *name = RelationGetRelationName(dim);

		if (best != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of table \"%s\" has no index a continuous view can join on",
							get_attname(RelationGetRelid(dim), best_att, false), name),
					 errdetail("A continuous view finds each message's row of the dimension through a btree index on the join column, in the collation of the join."),
					 errhint("Join on the table's key, or create a unique index: CREATE UNIQUE INDEX ON %s (%s).",
							 quote_identifier(name),
							 quote_identifier(get_attname(RelationGetRelid(dim), best_att, false)))));
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the join of a continuous view needs an equality of a column of \"%s\" to an expression of its stream",
						name),
				 errhint(JOIN_SHAPE_HINT)));
	}
	return false;
}

/*
 * A table joined to a table: the view follows the dimension's changes too.
 * The decoder reads the dimension as of each change of the source, which
 * it can only for a table it may read in the past (user_catalog_table);
 * the old rows of its changes say which groups change; the rows of the
 * source with a key come through an index on its join column.
 */
static void
table_join(RangeTblEntry *source, Relation dim, JoinSpec *join, bool check)
{
	Node	   *value = strip_relabel((Node *) join->value);
	const char *name = RelationGetRelationName(dim);
	Relation	fact;
	bool		unique;

	if (IsA(value, Var) && ((Var *) value)->varattno > 0)
	{
		join->fact_col = ((Var *) value)->varattno;
		join->fact_opno = get_commutator(join->eq_opno);
	}
	if (!check)
		return;
	if (join->fact_col == InvalidAttrNumber || exprType(value) != join->value_type ||
		join->value_type != TupleDescAttr(RelationGetDescr(dim), join->keycol - 1)->atttypid)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view over a table joins a column of it to a key of the same type"),
				 errhint("Write ON d.key = t.column, with a column of the same type as d.key.")));
	if (!RelationIsUsedAsCatalogTable(dim))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" must be a user catalog table to be joined by a continuous view over a table", name),
				 errdetail("The view joins each change of its source to the row of \"%s\" as of that change, which logical decoding can read only in such a table.", name),
				 errhint("Run ALTER TABLE %s SET (user_catalog_table = true).", quote_identifier(name))));
	if (dim->rd_rel->relreplident != REPLICA_IDENTITY_FULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" must have REPLICA IDENTITY FULL to be joined by a continuous view over a table", name),
				 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL.", quote_identifier(name))));
	fact = table_open(source->relid, AccessShareLock);
	if (!OidIsValid(join->fact_opno) ||
		!OidIsValid(JoinKeyIndex(fact, join->fact_col, join->fact_opno, join->collation, false, &unique)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("column \"%s\" of table \"%s\" needs an index for a continuous view to join on it",
						get_attname(source->relid, join->fact_col, false), RelationGetRelationName(fact)),
				 errdetail("A change of a row of \"%s\" re-aggregates the groups of the rows that join it, found through that index.", name),
				 errhint("Run CREATE INDEX ON %s (%s).", quote_identifier(RelationGetRelationName(fact)),
						 quote_identifier(get_attname(source->relid, join->fact_col, false)))));
	table_close(fact, AccessShareLock);
}

/* Refuse columns that are neither the source's nor the dimension's. */
typedef struct SidesContext
{
	Index		source_rti;
	Index		dim_rti;
} SidesContext;

static bool
sides_walker(Node *node, SidesContext *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varlevelsup == 0 && var->varno == ctx->dim_rti && var->varattno == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a continuous view cannot use the whole row of the table it joins"),
					 errhint("Name the columns of the table the view uses.")));
		if (var->varlevelsup == 0 && var->varno != ctx->source_rti && var->varno != ctx->dim_rti)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a continuous view over a join reads the columns of its two tables by their own names"),
					 errhint("Name the columns by the tables' names or aliases, not by the join's alias.")));
		return false;
	}
	return expression_tree_walker(node, sides_walker, ctx);
}

/*
 * JoinAnalyze: the source's range table entry of a query whose FROM is
 * join, its index into *source_rti, and the join into *join.  With check,
 * refuses (with an error that says what to write) a join flowstate does
 * not maintain.
 */
RangeTblEntry *
JoinAnalyze(Query *query, JoinExpr *j, Index *source_rti, JoinSpec *join, bool check)
{
	RangeTblEntry *left;
	RangeTblEntry *right;
	RangeTblEntry *source;
	Relation	dim;
	List	   *quals;
	bool		unique = false;
	SidesContext sides;

	memset(join, 0, sizeof(JoinSpec));
	if (j->jointype != JOIN_INNER && j->jointype != JOIN_LEFT)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view joins with JOIN or LEFT JOIN only"),
				 errhint(JOIN_SHAPE_HINT)));
	if (!IsA(j->larg, RangeTblRef) || !IsA(j->rarg, RangeTblRef))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view joins its stream to one table"),
				 errhint("Join one table to the stream per view, or join the dimensions into one table.")));
	if (j->usingClause != NIL || j->isNatural)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view joins with ON, not with USING or NATURAL"),
				 errhint(JOIN_SHAPE_HINT)));
	if (j->quals == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the join of a continuous view needs an ON clause"),
				 errhint(JOIN_SHAPE_HINT)));

	left = rt_fetch(((RangeTblRef *) j->larg)->rtindex, query->rtable);
	right = rt_fetch(((RangeTblRef *) j->rarg)->rtindex, query->rtable);
	if (left->rtekind != RTE_RELATION || right->rtekind != RTE_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view joins a stream to a table, not to a subquery or function"),
				 errhint(JOIN_SHAPE_HINT)));

	/* the stream is the source; LEFT JOIN keeps its rows */
	if (QueryIsStream(left->relid) || j->jointype == JOIN_LEFT ||
		!QueryIsStream(right->relid))
	{
		*source_rti = ((RangeTblRef *) j->larg)->rtindex;
		join->rti = ((RangeTblRef *) j->rarg)->rtindex;
	}
	else
	{
		*source_rti = ((RangeTblRef *) j->rarg)->rtindex;
		join->rti = ((RangeTblRef *) j->larg)->rtindex;
	}
	source = rt_fetch(*source_rti, query->rtable);
	join->present = true;
	join->outer = j->jointype == JOIN_LEFT;
	join->relid = rt_fetch(join->rti, query->rtable)->relid;

	if (check)
	{
		if (!QueryIsStream(source->relid) && QueryIsStream(join->relid))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a continuous view keeps every row of its stream: the stream must be the left side of LEFT JOIN"),
					 errhint("Write FROM stream LEFT JOIN table.")));
		if (!QueryIsStream(source->relid) && get_rel_relkind(source->relid) != RELKIND_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("a continuous view over \"%s\" cannot join a table", get_rel_name(source->relid)),
					 errhint("Join a Kafka stream or an ordinary table (not partitioned) to a table.")));
		sides.source_rti = *source_rti;
		sides.dim_rti = join->rti;
		(void) sides_walker((Node *) query->targetList, &sides);
		(void) sides_walker(query->jointree->quals, &sides);
		(void) sides_walker(query->havingQual, &sides);
		(void) sides_walker(j->quals, &sides);
	}

	dim = table_open(join->relid, AccessShareLock);
	if (check)
	{
		RangeTblEntry *rte = rt_fetch(join->rti, query->rtable);

		check_dimension(dim);
		if (rte->tablesample != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("TABLESAMPLE is not supported in a continuous view"),
					 errhint("Join the whole table.")));
		if (rte->inh && dim->rd_rel->relkind == RELKIND_RELATION &&
			find_inheritance_children(join->relid, AccessShareLock) != NIL)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("table \"%s\" has inheritance children, whose rows a continuous view does not join",
							RelationGetRelationName(dim)),
					 errhint("Write JOIN ONLY %s, or join a table without children.",
							 quote_identifier(RelationGetRelationName(dim)))));
	}
	quals = make_ands_implicit((Expr *) copyObject(j->quals));
	if (find_key(&quals, dim, *source_rti, join, check, &unique) && !unique)
	{
		/* several rows per key: a history, matched by the range */
		const char *key = get_attname(join->relid, join->keycol, false);

		join->temporal = true;
		if (check && !has_version_range(quals, dim, join->rti, *source_rti))
		{
			if (history_keyed_by(join->relid, key))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("a join to history \"%s\" needs the range of its versions",
								RelationGetRelationName(dim)),
						 errdetail("A history holds several versions of each key; a message joins the version valid at its time."),
						 errhint("Add to ON: AND h.valid_from <= s.ts AND s.ts < h.valid_to, with the message's time for s.ts.")));
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of table \"%s\" is not unique: a continuous view joins on a key",
							key, RelationGetRelationName(dim)),
					 errdetail("Each message must match at most one row of the dimension."),
					 errhint("Join on a column with a unique index (CREATE UNIQUE INDEX ON %s (%s)), or to a flowstate history with the range of its versions.",
							 quote_identifier(RelationGetRelationName(dim)), quote_identifier(key))));
		}
		if (check && !history_keyed_by(join->relid, key))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
					 errmsg("column \"%s\" of table \"%s\" is not unique: a continuous view joins on a key",
							key, RelationGetRelationName(dim)),
					 errdetail("Only a flowstate history guarantees one version of a key at each time."),
					 errhint("Join on a column with a unique index (CREATE UNIQUE INDEX ON %s (%s)).",
							 quote_identifier(RelationGetRelationName(dim)), quote_identifier(key))));
	}
	join->quals = quals != NIL ? make_ands_explicit(quals) : NULL;
	if (!QueryIsStream(source->relid) && join->value != NULL)
		table_join(source, dim, join, check);
	table_close(dim, AccessShareLock);
	return source;
}
