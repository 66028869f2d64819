/*-------------------------------------------------------------------------
 *
 * projection.c
 *	  A view's defining query as executor expressions, evaluated per row.
 *
 * Each view compiles its defining query once: the WHERE clause into an
 * ExprState, and the group keys, aggregate arguments, FILTER clauses and the
 * window's event time into one projection, all with the executor's own
 * expression machinery (ingest.c then accumulates the projected row into
 * its group).  A row on which an expression fails becomes a dead letter; a
 * row whose window closed longer than the view's allowed lateness ago
 * becomes a late event.  Both are kept in the view's pending rows and
 * written with the next flush (flush.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "ingest.h"

/* Most side rows (dead letters, late events) kept per view between flushes. */
#define MAX_PENDING_ROWS 10000

static TargetEntry *
add_column(List **tlist, Expr *expr)
{
	TargetEntry *tle = makeTargetEntry(expr, list_length(*tlist) + 1, NULL, false);

	*tlist = lappend(*tlist, tle);
	return tle;
}

/* Whether a function is other than one of the server's own (internal). */
static bool
not_internal(Oid funcid, void *context)
{
	HeapTuple	tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	bool		result = true;

	if (HeapTupleIsValid(tuple))
	{
		result = ((Form_pg_proc) GETSTRUCT(tuple))->prolang != INTERNALlanguageId;
		ReleaseSysCache(tuple);
	}
	return result;
}

static bool
calls_not_internal(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, not_internal, context))
		return true;
	return expression_tree_walker(node, calls_not_internal, context);
}

/*
 * ProjectionCompile compiles the defining query's per-row expressions into
 * vr, in the current memory context.
 */
void
ProjectionCompile(ViewRuntime *vr)
{
	ViewDef    *def = vr->def;
	List	   *tlist = NIL;
	ListCell   *lc;
	int			i;
	TupleDesc	desc;

	i = 0;
	foreach(lc, def->key_exprs)
	{
		add_column(&tlist, (Expr *) copyObject(lfirst(lc)));
		vr->key_col[i++] = list_length(tlist) - 1;
	}
	i = 0;
	foreach(lc, def->aggrefs)
	{
		Aggref	   *aggref = lfirst(lc);

		vr->filter_col[i] = -1;
		vr->arg_col[i] = -1;
		if (aggref->aggfilter)
		{
			add_column(&tlist, (Expr *) copyObject(aggref->aggfilter));
			vr->filter_col[i] = list_length(tlist) - 1;
		}
		if (aggref->args != NIL)
		{
			add_column(&tlist, (Expr *) copyObject(((TargetEntry *) linitial(aggref->args))->expr));
			vr->arg_col[i] = list_length(tlist) - 1;
		}
		i++;
	}
	vr->ts_col = -1;
	if (def->window.present)
	{
		add_column(&tlist, (Expr *) copyObject(def->window.ts_expr));
		vr->ts_col = list_length(tlist) - 1;
	}

	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);

		tle->expr = expression_planner(tle->expr);
	}

	vr->guarded = calls_not_internal((Node *) tlist, NULL) ||
		calls_not_internal((Node *) def->where, NULL);

	vr->econtext = CreateStandaloneExprContext();
	desc = ExecTypeFromTL(tlist);
	vr->result = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	vr->proj = ExecBuildProjectionInfo(tlist, vr->econtext, vr->result, NULL, NULL);
	vr->qual = NULL;
	if (def->where)
		vr->qual = ExecInitQual(make_ands_implicit(expression_planner((Expr *) copyObject(def->where))),
								NULL);
}

/* The text of a source row, for dead letters and late events. */
static char *
row_text(TupleTableSlot *slot)
{
	char	   *text = NULL;

	PG_TRY();
	{
		Datum		d = ExecFetchSlotHeapTupleDatum(slot);

		text = OidOutputFunctionCall(F_RECORD_OUT, d);
	}
	PG_CATCH();
	{
		FlushErrorState();
		text = pstrdup("(row not printable)");
	}
	PG_END_TRY();
	return text;
}

/* A side row of the row in slot, in vr->pending_cxt, kept for the flush. */
static PendingRow *
add_pending(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(vr->pending_cxt);
	PendingRow *row = palloc0(sizeof(PendingRow));

	row->lsn = lsn;
	row->at_message = vr->at_message;
	row->partition = vr->msg_partition;
	row->offset = vr->msg_offset;
	row->payload = row_text(slot);
	if (list_length(vr->pending) >= MAX_PENDING_ROWS)
		vr->pending_dropped++;
	else
		vr->pending = lappend(vr->pending, row);
	MemoryContextSwitchTo(oldcxt);
	return row;
}

/*
 * ProjectionEvaluate evaluates the defining query on a row into
 * vr->result.  Returns false when WHERE rejects the row or an expression
 * fails; a failure becomes a dead letter.
 */
bool
ProjectionEvaluate(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn)
{
	ExprContext *ec = vr->econtext;
	MemoryContext rowcxt = ec->ecxt_per_tuple_memory;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	ResetExprContext(ec);
	ec->ecxt_scantuple = slot;
	if (vr->guarded)
	{
		/*
		 * Procedural functions run queries even for expressions, under the
		 * active snapshot: while decoding, the historic one of the change.
		 */
		BeginInternalSubTransaction(NULL);
		PushActiveSnapshot(GetTransactionSnapshot());
	}
	MemoryContextSwitchTo(rowcxt);
	PG_TRY();
	{
		if (vr->qual && !ExecQual(vr->qual, ec))
			ok = false;
		else
		{
			(void) ExecProject(vr->proj);
			for (int i = 0; i < vr->def->layout.nkeys; i++)
			{
				int			col = vr->key_col[i];

				if (!vr->result->tts_isnull[col] && vr->def->layout.keys[i].typlen == -1)
					vr->result->tts_values[col] =
						PointerGetDatum(PG_DETOAST_DATUM(vr->result->tts_values[col]));
			}
		}
		if (vr->guarded)
		{
			PopActiveSnapshot();
			ReleaseCurrentSubTransaction();
			CurrentResourceOwner = owner;
		}
	}
	PG_CATCH();
	{
		PendingRow *row;
		ErrorData  *edata;

		MemoryContextSwitchTo(vr->pending_cxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (vr->guarded)
		{
			RollbackAndReleaseCurrentSubTransaction();
			CurrentResourceOwner = owner;
		}
		row = add_pending(vr, slot, lsn);
		row->error = edata->message;
		memcpy(row->sqlstate, unpack_sql_state(edata->sqlerrcode), 5);
		vr->batch_failed++;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(rowcxt);
	return ok;
}

/*
 * ProjectionIsLate tells whether the evaluated row is later than the view
 * allows, and records it as a late event if so.
 */
bool
ProjectionIsLate(ViewRuntime *vr, TupleTableSlot *slot, int sign, XLogRecPtr lsn)
{
	ViewDef    *def = vr->def;
	int64		ts;
	int64		start;
	int64		watermark;
	PendingRow *row;

	if (vr->ts_col < 0 || vr->result->tts_isnull[vr->ts_col])
		return false;
	ts = DatumGetInt64(vr->result->tts_values[vr->ts_col]);
	if (!vr->has_watermark || def->allowed_lateness_us < 0 || def->window.size_us <= 0 ||
		vr->result->tts_isnull[vr->key_col[def->window.keyno]])
		return false;

	start = DatumGetInt64(vr->result->tts_values[vr->key_col[def->window.keyno]]);
	watermark = vr->max_ts - def->watermark_delay_us;
	if (start + def->window.size_us + def->allowed_lateness_us > watermark)
		return false;

	row = add_pending(vr, slot, lsn);
	row->late = true;
	row->deleted = sign < 0;
	row->event_time = ts;
	row->watermark = watermark;
	vr->batch_late++;
	return true;
}
