/*-------------------------------------------------------------------------
 *
 * read_filter.c
 *	  Passes a read's conditions on the group keys of a continuous view to
 *	  the functions its SQL calls, so that a read of one key's windows
 *	  copies those groups out of shared memory, not every group.
 *
 * A continuous view's SQL (QueryViewSql) reads the state table, whose
 * rows flowstate.durable(state_table, gid) keeps, and the groups of shared
 * memory, flowstate.unflushed_states(state_table).  PostgreSQL pushes a
 * condition of the read on the view's key columns into both.  When, on
 * both, there is one on every key but the window, of the form key = value
 * where value is a constant or a parameter of the statement and = the
 * key's hash equality, a set_rel_pathlist hook appends those values to the
 * calls, in key order: flowstate.durable(state_table, gid, VARIADIC keys)
 * and flowstate.unflushed_states(state_table, VARIADIC keys).  Those then
 * capture the groups whose keys but the window hash as the values do
 * (StoreCapture: a chain of such groups in shared memory), one capture for
 * both: the read is exact as before, and the conditions themselves stay
 * where they are to pick the rows.
 *
 * Only views whose keys but the window all compare by their bytes
 * (GroupKeyPartIndexable) are concerned, only while their view has a
 * writer, and only in READ COMMITTED: a transaction snapshot captures
 * every group of a view once (api.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "optimizer/restrictinfo.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
#include "utils/typcache.h"

#include "api/read_filter.h"
#include "state/group.h"
#include "state/state_store.h"

static set_rel_pathlist_hook_type prev_set_rel_pathlist = NULL;

/* Whether a function is flowstate.<name> with nargs arguments. */
static bool
is_flowstate_function(Oid funcid, const char *name, int nargs, Oid *variadic)
{
	char	   *fname = get_func_name(funcid);
	Oid			argtypes[3] = {REGCLASSOID, INT8OID, ANYOID};
	Oid			nsp;

	if (fname == NULL || strcmp(fname, name) != 0)
		return false;
	nsp = get_func_namespace(funcid);
	if (!OidIsValid(nsp) || strcmp(get_namespace_name(nsp), "flowstate") != 0 ||
		get_func_nargs(funcid) != nargs)
		return false;
	/* its overload that takes the keys' values */
	argtypes[nargs] = ANYOID;
	*variadic = LookupFuncName(list_make2(makeString("flowstate"), makeString((char *) name)),
							   nargs + 1, argtypes, true);
	return OidIsValid(*variadic);
}

/* The state table a call's first argument names, or invalid. */
static Oid
state_table_arg(List *args)
{
	Const	   *c = linitial(args);

	if (!IsA(c, Const) || c->consttype != REGCLASSOID || c->constisnull)
		return InvalidOid;
	return DatumGetObjectId(c->constvalue);
}

/*
 * The value a restriction gives column attno of rel: key = value where =
 * is the key's hash equality, value a constant or a statement parameter.
 */
static Expr *
key_value(RelOptInfo *rel, Index rti, AttrNumber attno, const KeySpec *key)
{
	TypeCacheEntry *tce = lookup_type_cache(key->type, TYPECACHE_EQ_OPR);
	ListCell   *lc;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst(lc);
		OpExpr	   *op = (OpExpr *) rinfo->clause;

		if (!IsA(op, OpExpr) || list_length(op->args) != 2 || !OidIsValid(tce->eq_opr) ||
			get_opcode(op->opno) != get_opcode(tce->eq_opr))
			continue;
		for (int side = 0; side < 2; side++)
		{
			Node	   *var = list_nth(op->args, side);
			Node	   *value = list_nth(op->args, 1 - side);

			while (IsA(var, RelabelType))
				var = (Node *) ((RelabelType *) var)->arg;
			if (!IsA(var, Var) || ((Var *) var)->varno != rti ||
				((Var *) var)->varattno != attno || ((Var *) var)->varlevelsup != 0)
				continue;
			while (IsA(value, RelabelType))
				value = (Node *) ((RelabelType *) value)->arg;
			if ((IsA(value, Const) ||
				 (IsA(value, Param) && ((Param *) value)->paramkind == PARAM_EXTERN)) &&
				get_typlen(exprType(value)) == key->typlen)
				return (Expr *) value;
		}
	}
	return NULL;
}

/*
 * The values of the keys but the window, in key order, that rel's
 * restrictions give; keycol is the attribute number of key 1; NIL if one
 * is missing.
 */
static List *
key_values(RelOptInfo *rel, Index rti, Oid state_relid, AttrNumber keycol)
{
	StoreKey	key = {MyDatabaseId, state_relid};
	ViewLayout *layout = palloc(sizeof(ViewLayout));
	List	   *values = NIL;

	if (!StoreViewLayout(key, layout) || !GroupKeyPartIndexable(layout))
		return NIL;
	for (int i = 0; i < layout->nkeys; i++)
	{
		Expr	   *value;

		if (layout->keys[i].is_window)
			continue;
		value = key_value(rel, rti, keycol + i, &layout->keys[i]);
		if (value == NULL)
			return NIL;
		values = lappend(values, copyObject(value));
	}
	return values;
}

/* Pass the key values to the call of flowstate.unflushed_states() of rel. */
static void
filter_unflushed(RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	RangeTblFunction *rtfunc;
	FuncExpr   *call;
	FuncExpr   *filtered;
	Oid			variadic;
	Oid			state_relid;
	List	   *values;

	if (list_length(rte->functions) != 1 || rte->funcordinality)
		return;
	rtfunc = linitial(rte->functions);
	call = (FuncExpr *) rtfunc->funcexpr;
	if (!IsA(call, FuncExpr) || list_length(call->args) != 1 ||
		!OidIsValid(state_relid = state_table_arg(call->args)) ||
		!is_flowstate_function(call->funcid, "unflushed_states", 1, &variadic))
		return;
	/* columns gid, live, then the keys */
	values = key_values(rel, rti, state_relid, 3);
	if (values == NIL)
		return;
	filtered = copyObject(call);
	filtered->funcid = variadic;
	filtered->args = list_concat(filtered->args, values);
	rtfunc->funcexpr = (Node *) filtered;
}

/* Pass the key values to the call of flowstate.durable() in rel's restrictions. */
static void
filter_durable(RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	ListCell   *lc;

	foreach(lc, rel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst(lc);
		FuncExpr   *call = (FuncExpr *) rinfo->clause;
		FuncExpr   *filtered;
		Oid			variadic;
		List	   *values;

		if (!IsA(call, FuncExpr) || list_length(call->args) != 2 ||
			state_table_arg(call->args) != rte->relid ||
			!is_flowstate_function(call->funcid, "durable", 2, &variadic))
			continue;
		/* columns gid, then the keys */
		values = key_values(rel, rti, rte->relid, 2);
		if (values == NIL)
			return;
		filtered = copyObject(call);
		filtered->funcid = variadic;
		filtered->args = list_concat(filtered->args, values);
		rinfo->clause = (Expr *) filtered;
		return;
	}
}

static void
read_filter_hook(PlannerInfo *root, RelOptInfo *rel, Index rti, RangeTblEntry *rte)
{
	if (prev_set_rel_pathlist)
		prev_set_rel_pathlist(root, rel, rti, rte);
	if (rel->reloptkind != RELOPT_BASEREL || rel->baserestrictinfo == NIL)
		return;
	if (rte->rtekind == RTE_FUNCTION)
		filter_unflushed(rel, rti, rte);
	else if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_RELATION)
		filter_durable(rel, rti, rte);
}

/*
 * ReadFilterInit installs the hook.
 */
void
ReadFilterInit(void)
{
	prev_set_rel_pathlist = set_rel_pathlist_hook;
	set_rel_pathlist_hook = read_filter_hook;
}
