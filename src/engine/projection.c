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
 * written with the next flush (flush.c), all of them: a source whose views
 * hold INGEST_PENDING_FLUSH_ROWS ends its batch and flushes early, with the values of the source
 * columns the view uses (the others are no business of the view).
 *
 * Compiling (which folds constant calls) and evaluating run as the view's
 * owner, read-only (security.c).  A defining query that cannot even be
 * compiled so makes every row of the view a dead letter with that error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "pgtime.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "aggregates/aggregate_state.h"
#include "engine/ingest.h"
#include "fs_catalog/security.h"


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
	/* a domain's CHECK may call any function */
	if (IsA(node, CoerceToDomain))
		return true;
	if (check_functions_in_node(node, not_internal, context))
		return true;
	return expression_tree_walker(node, calls_not_internal, context);
}

/* The source columns the view's per-row expressions read. */
static void
note_used_columns(ViewRuntime *vr, Node *node)
{
	Bitmapset  *atts = NULL;
	int			x = -1;

	pull_varattnos(node, vr->def->source_rti, &atts);
	while ((x = bms_next_member(atts, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;

		if (attno == InvalidAttrNumber)
			vr->payload_all = true; /* a whole-row reference */
		else if (attno > 0)
			vr->payload_atts = bms_add_member(vr->payload_atts, attno);
	}
}

/*
 * Compile the view's expressions (see ProjectionCompile).  Planning them
 * evaluates calls whose arguments are constant: as the owner.
 */
static void
compile(ViewRuntime *vr)
{
	ViewDef    *def = vr->def;
	List	   *tlist = NIL;
	ListCell   *lc;
	int			i;
	TupleDesc	desc;

	/* the time zone its expressions are evaluated in (security.c) */
	if (def->time_zone != NULL)
	{
		vr->zone = pg_tzset(def->time_zone);
		if (vr->zone == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("time zone \"%s\" of continuous view %s is not known to this server",
							def->time_zone, def->view_name),
					 errhint("Drop the view with flowstate.drop_view() and create it again in a known time zone.")));
	}

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
		/* a generic aggregate's other arguments follow its first */
		if (def->layout.aggs[i].kind == AGG_GENERIC)
		{
			ListCell   *arg;

			for_each_from(arg, aggref->args, 1)
				add_column(&tlist, (Expr *) copyObject(((TargetEntry *) lfirst(arg))->expr));
		}
		i++;
	}
	vr->ts_col = -1;
	if (def->window.present)
	{
		add_column(&tlist, (Expr *) copyObject(def->window.ts_expr));
		vr->ts_col = list_length(tlist) - 1;
	}

	note_used_columns(vr, (Node *) tlist);
	note_used_columns(vr, (Node *) def->where);
	if (def->join.present)
	{
		note_used_columns(vr, (Node *) def->join.value);
		note_used_columns(vr, (Node *) def->join.quals);
	}
	/* the dimension's columns are the inner tuple (lookup.c) */
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);

		tle->expr = expression_planner((Expr *) LookupInnerVars(def, (Node *) tle->expr));
	}

	vr->guarded = calls_not_internal((Node *) tlist, NULL) ||
		calls_not_internal((Node *) def->where, NULL) ||
		calls_not_internal((Node *) def->join.value, NULL) ||
		calls_not_internal((Node *) def->join.quals, NULL) ||
		AggGenericPrepare(&def->layout);
	vr->lookup = LookupCreate(vr);

	vr->econtext = CreateStandaloneExprContext();
	desc = ExecTypeFromTL(tlist);
	vr->result = MakeSingleTupleTableSlot(desc, &TTSOpsVirtual);
	vr->proj = ExecBuildProjectionInfo(tlist, vr->econtext, vr->result, NULL, NULL);
	vr->qual = NULL;
	if (def->where)
		vr->qual = ExecInitQual(make_ands_implicit(expression_planner((Expr *) LookupInnerVars(def, (Node *) def->where))),
								NULL);
}

/*
 * ProjectionCompile compiles the defining query's per-row expressions into
 * vr, in the current memory context, as the view's owner.  An error is
 * kept: it becomes the error of every row (ProjectionEvaluate).
 */
void
ProjectionCompile(ViewRuntime *vr)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	SecuritySave save;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		SecurityEnter(vr->def->owner, NULL, &save);
		SecurityTimerStart();
		compile(vr);
		(void) SecurityTimerStop();
		SecurityLeave(&save);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		bool		timed_out = SecurityTimerStop();

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		SecurityRestoreZone(&save);
		/* the rollback made the transaction's context current: the view's */
		MemoryContextSwitchTo(cxt);
		if (timed_out)
		{
			edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
			edata->message = psprintf("compiling the view took longer than flowstate.evaluation_timeout (%d ms)",
									  flowstate_evaluation_timeout);
		}
		vr->compile_error = edata->message;
		memcpy(vr->compile_sqlstate, unpack_sql_state(edata->sqlerrcode), 5);
		if (vr->econtext == NULL)
			vr->econtext = CreateStandaloneExprContext();
		if (vr->result == NULL)
			vr->result = MakeSingleTupleTableSlot(CreateTemplateTupleDesc(0), &TTSOpsVirtual);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	CurrentResourceOwner = owner;
}

/* Append a column's value to a JSON object as JSON. */
static void
append_json_value(StringInfo buf, Oid type, Datum value)
{
	Oid			outfunc;
	bool		varlena;
	char		category;
	bool		preferred;
	char	   *text;

	getTypeOutputInfo(type, &outfunc, &varlena);
	text = OidOutputFunctionCall(outfunc, value);
	get_type_category_preferred(getBaseType(type), &category, &preferred);
	if (type == BOOLOID)
		appendStringInfoString(buf, DatumGetBool(value) ? "true" : "false");
	else if (type == JSONOID || type == JSONBOID)
		appendStringInfoString(buf, text);
	else if (category == TYPCATEGORY_NUMERIC && strspn(text, "+-0123456789.eE") == strlen(text) &&
			 strpbrk(text, "0123456789") != NULL)
		appendStringInfoString(buf, text);
	else
		escape_json(buf, text);
}

/*
 * The text of a source row for dead letters and late events: a JSON object
 * of the columns the view uses.
 */
static char *
row_text(ViewRuntime *vr, TupleTableSlot *slot)
{
	char	   *text = NULL;

	PG_TRY();
	{
		TupleDesc	desc = slot->tts_tupleDescriptor;
		StringInfoData buf;
		bool		first = true;

		slot_getallattrs(slot);
		initStringInfo(&buf);
		appendStringInfoChar(&buf, '{');
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(desc, i);

			if (att->attisdropped ||
				!(vr->payload_all || bms_is_member(i + 1, vr->payload_atts)))
				continue;
			if (!first)
				appendStringInfoString(&buf, ", ");
			first = false;
			escape_json(&buf, NameStr(att->attname));
			appendStringInfoString(&buf, ": ");
			if (slot->tts_isnull[i])
				appendStringInfoString(&buf, "null");
			else
				append_json_value(&buf, att->atttypid, slot->tts_values[i]);
		}
		appendStringInfoChar(&buf, '}');
		text = buf.data;
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
	row->payload = row_text(vr, slot);
	vr->pending = lappend(vr->pending, row);
	MemoryContextSwitchTo(oldcxt);
	return row;
}

/*
 * Run step on the row just evaluated (or about to be) as the view's owner,
 * read-only, under the evaluation timer, and in a subtransaction with a
 * snapshot when the view calls functions other than the server's own.
 * Returns what step returns, or false when it fails: the failure becomes a
 * dead letter if record (not when a recompute reads again a row that came
 * before).
 */
static bool
run_guarded(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn, bool record,
			bool (*step) (ViewRuntime *vr, void *arg), void *arg)
{
	MemoryContext rowcxt = vr->econtext->ecxt_per_tuple_memory;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;
	SecuritySave save;

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
	SecurityEnter(vr->def->owner, vr->zone, &save);
	SecurityTimerStart();
	PG_TRY();
	{
		ok = step(vr, arg);
		(void) SecurityTimerStop();
		SecurityLeave(&save);
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
		bool		timed_out = SecurityTimerStop();

		/* kept with the dead letter, or for this row only */
		MemoryContextSwitchTo(record ? vr->pending_cxt : rowcxt);
		edata = CopyErrorData();
		FlushErrorState();
		if (timed_out)
		{
			edata->sqlerrcode = ERRCODE_QUERY_CANCELED;
			edata->message = psprintf("evaluating the row took longer than flowstate.evaluation_timeout (%d ms)",
									  flowstate_evaluation_timeout);
		}
		if (vr->guarded)
		{
			/* which restores the user and the rest, but the time zone */
			RollbackAndReleaseCurrentSubTransaction();
			CurrentResourceOwner = owner;
			SecurityRestoreZone(&save);
		}
		else
			SecurityAfterError(&save);
		vr->last_failed = true;
		if (LookupReadFailed(vr) && vr->shared->status != VIEW_BACKFILLING)
		{
			/*
			 * The dimension's index could not be read as of the change (or
			 * the recompute): not the row's fault, and no dead letter.  The
			 * view starts over from both tables, under a new snapshot and
			 * the index of then; a backfill failing so is a dead letter.
			 */
			IngestRequestRebuild(vr, psprintf("the table it joins could not be read through its index: %s",
											  edata->message));
		}
		else if (record)
		{
			row = add_pending(vr, slot, lsn);
			row->error = edata->message;
			memcpy(row->sqlstate, unpack_sql_state(edata->sqlerrcode), 5);
			vr->batch_failed++;
		}
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(rowcxt);
	return ok;
}

/* The join, WHERE, then the projection of the row into vr->result. */
static bool
evaluate_step(ViewRuntime *vr, void *arg)
{
	if (vr->lookup && !LookupRow(vr))
		return false;
	if (vr->qual && !ExecQual(vr->qual, vr->econtext))
		return false;
	(void) ExecProject(vr->proj);
	for (int i = 0; i < vr->def->layout.nkeys; i++)
	{
		int			col = vr->key_col[i];

		if (!vr->result->tts_isnull[col] && vr->def->layout.keys[i].typlen == -1)
			vr->result->tts_values[col] =
				PointerGetDatum(PG_DETOAST_DATUM(vr->result->tts_values[col]));
	}
	return true;
}

/*
 * ProjectionEvaluate evaluates the defining query on a row into
 * vr->result.  Returns false when WHERE rejects the row or an expression
 * fails (vr->last_failed tells which); a failure becomes a dead letter if
 * record (not when a recompute reads again a row that came before).
 */
bool
ProjectionEvaluate(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn, bool record)
{
	ExprContext *ec = vr->econtext;

	ResetExprContext(ec);
	ec->ecxt_scantuple = slot;
	vr->last_failed = false;
	if (vr->compile_error)
	{
		vr->last_failed = true;
		if (record)
		{
			PendingRow *row = add_pending(vr, slot, lsn);

			row->error = vr->compile_error;
			memcpy(row->sqlstate, vr->compile_sqlstate, 5);
			vr->batch_failed++;
		}
		return false;
	}
	return run_guarded(vr, slot, lsn, record, evaluate_step, NULL);
}

typedef struct AdvanceArgs
{
	char	  **blocks;
	int			nblocks;
	MemoryContext cxt;
} AdvanceArgs;

/*
 * The transitions of the generic aggregates: every new state first, then
 * into the blocks, so that a row whose transition fails changes none.
 */
static bool
advance_step(ViewRuntime *vr, void *arg)
{
	AdvanceArgs *a = arg;
	const ViewLayout *layout = &vr->def->layout;
	Datum	   *values = vr->result->tts_values;
	bool	   *isnull = vr->result->tts_isnull;
	GenericFields out[2][FLOWSTATE_MAX_AGGS];
	bool		changed[2][FLOWSTATE_MAX_AGGS];
	MemoryContext oldcxt = MemoryContextSwitchTo(a->cxt);

	Assert(a->nblocks <= 2);
	for (int b = 0; b < a->nblocks; b++)
	{
		for (int i = 0; i < layout->naggs; i++)
		{
			const AggSpec *spec = &layout->aggs[i];
			int			col = vr->arg_col[i];

			changed[b][i] = false;
			if (spec->kind != AGG_GENERIC ||
				(vr->filter_col[i] >= 0 &&
				 (isnull[vr->filter_col[i]] || !DatumGetBool(values[vr->filter_col[i]]))))
				continue;
			changed[b][i] = AggGenericAdvance(spec, a->blocks[b],
											  col >= 0 ? &values[col] : NULL,
											  col >= 0 ? &isnull[col] : NULL,
											  &out[b][i]);
		}
	}
	for (int b = 0; b < a->nblocks; b++)
	{
		for (int i = 0; i < layout->naggs; i++)
		{
			const AggSpec *spec = &layout->aggs[i];
			GenericFields *f;

			if (!changed[b][i])
				continue;
			f = FIELDS(GenericFields, a->blocks[b], spec);
			/* a delta's state is its own */
			if (!spec->valbyval && f->state != (Datum) 0 && f->state != out[b][i].state)
				pfree(DatumGetPointer(f->state));
			*f = out[b][i];
		}
	}
	MemoryContextSwitchTo(oldcxt);
	return true;
}

/*
 * ProjectionAdvance adds the row just evaluated (ProjectionEvaluate) to
 * the generic aggregates of up to two delta blocks, their new states in
 * CurrentMemoryContext.  Returns false, changing no block, when a
 * transition function fails: the row is then a dead letter if record.
 */
bool
ProjectionAdvance(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn, bool record,
				  char **blocks, int nblocks)
{
	MemoryContext cxt = CurrentMemoryContext;
	AdvanceArgs a = {blocks, nblocks, cxt};
	bool		ok = run_guarded(vr, slot, lsn, record, advance_step, &a);

	MemoryContextSwitchTo(cxt);
	return ok;
}

/*
 * ProjectionRefuse records the evaluated row as a dead letter that the
 * view could not apply, with an error as PostgreSQL would have raised it.
 */
void
ProjectionRefuse(ViewRuntime *vr, TupleTableSlot *slot, XLogRecPtr lsn,
				 int sqlerrcode, const char *message)
{
	PendingRow *row = add_pending(vr, slot, lsn);

	row->error = MemoryContextStrdup(vr->pending_cxt, message);
	memcpy(row->sqlstate, unpack_sql_state(sqlerrcode), 5);
	vr->batch_failed++;
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
	if (def->allowed_lateness_us < 0 || def->window.size_us <= 0 ||
		vr->result->tts_isnull[vr->key_col[def->window.keyno]])
		return false;

	/*
	 * A table's rows are decoded in the same order again after a crash: the
	 * watermark moves with each.  A stream's partitions are consumed again
	 * in another interleaving; its rows are judged against the event time
	 * of the last committed flush, which never goes back: a row late before
	 * a crash is late again after it (recorded once), a row applied then
	 * but not flushed may only turn late.
	 */
	if (def->stream ? !vr->has_durable_max_ts : !vr->has_watermark)
		return false;
	start = DatumGetInt64(vr->result->tts_values[vr->key_col[def->window.keyno]]);
	watermark = (def->stream ? vr->durable_max_ts : vr->max_ts) - def->watermark_delay_us;
	if (start > ViewFinalCutoff(def, watermark - def->allowed_lateness_us))
		return false;

	row = add_pending(vr, slot, lsn);
	row->late = true;
	row->deleted = sign < 0;
	row->event_time = ts;
	row->watermark = watermark;
	vr->batch_late++;
	return true;
}
