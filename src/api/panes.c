/*-------------------------------------------------------------------------
 *
 * panes.c
 *	  The panes of the continuous views of hopping, cumulating and session
 *	  windows (hop.c, session.c): the ordinary continuous view <name>_panes
 *	  that keeps their state, and what the view <name> users read is made
 *	  of around it.
 *
 * A view of such windows is three objects made together, and dropped with
 * the view:
 *	- <name>_panes, a continuous view of tumbling windows (the panes) with
 *	  the view's keys and aggregates (PanesCreate); its catalog row names
 *	  the view (flowstate.view.hop_view) and the kind of its windows;
 *	- <name>, a plain view that combines the panes' partial states into the
 *	  windows (the SQL of hop.c or session.c), and with retention shows the
 *	  windows whose panes are all kept (PanesKeptSql);
 *	- with notify or changelog, <name>_final(lo, hi), which gives the rows
 *	  of the windows that became final between two event times, for the
 *	  panes' flush to announce them (PanesFinalFunction).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/dependency.h"
#include "catalog/pg_proc.h"
#include "executor/spi.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"

#include "api/panes.h"

static void
panes_spi_run(const char *sql, int expected)
{
	int			ret = SPI_execute(sql, false, 0);

	if (ret != expected)
		elog(ERROR, "flowstate statement failed (%s): %s", SPI_result_code_string(ret), sql);
}

/* An interval of us microseconds, as an SQL literal. */
char *
PanesIntervalLiteral(int64 us)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->day = (int32) (us / USECS_PER_DAY);
	iv->time = us % USECS_PER_DAY;
	return psprintf("%s::pg_catalog.interval",
					quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																		   IntervalPGetDatum(iv)))));
}

/*
 * PanesCreate creates, as its caller, the continuous view <name><suffix>
 * (the panes of a view of windows of kind, for messages; or the values of
 * a view with multiset aggregates): "SELECT select_list FROM source WHERE
 * quals GROUP BY group_by" through flowstate.create_view, src the
 * source's range table entry, deparsed in src_cxt, with the view's
 * watermark_delay, allowed_lateness, memory_limit and retention (each a
 * Datum and whether it is null).  Returns it.  Within SPI.
 */
Oid
PanesCreate(Oid nspid, const char *name, const char *suffix, const char *kind,
			const char *select_list, RangeTblEntry *src, List *src_cxt, Node *quals,
			const char *group_by, Datum watermark_delay, bool delay_null,
			Datum allowed_lateness, bool lateness_null, Datum memory_limit, bool limit_null,
			Datum retention, bool retention_null)
{
	char	   *nsp = get_namespace_name(nspid);
	char	   *panes_name = psprintf("%s%s", name, suffix);
	StringInfoData q;
	Oid			argtypes[6] = {TEXTOID, TEXTOID, INTERVALOID, TEXTOID, INTERVALOID, INTERVALOID};
	Datum		args[6];
	char		nulls[6] = {' ', ' ', delay_null ? 'n' : ' ', limit_null ? 'n' : ' ',
	lateness_null ? 'n' : ' ', retention_null ? 'n' : ' '};

	if (strlen(panes_name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("the %s of the view would have a name longer than %d bytes: \"%s\"",
						suffix + 1, NAMEDATALEN - 1, panes_name),
				 errhint("Give the view a shorter name.")));
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT %s FROM %s%s %s", select_list,
					 src->inh ? "" : "ONLY ",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(src->relid)),
												get_rel_name(src->relid)),
					 quote_identifier(src->eref->aliasname));
	if (quals != NULL)
		appendStringInfo(&q, " WHERE %s", deparse_expression(quals, src_cxt, true, false));
	appendStringInfo(&q, " GROUP BY %s", group_by);

	args[0] = CStringGetTextDatum(quote_qualified_identifier(nsp, panes_name));
	args[1] = CStringGetTextDatum(q.data);
	args[2] = watermark_delay;
	args[3] = memory_limit;
	args[4] = allowed_lateness;
	args[5] = retention;
	if (SPI_execute_with_args("SELECT flowstate.create_view($1, $2, watermark_delay => $3, memory_limit => $4,"
							  " allowed_lateness => $5, retention => $6)",
							  6, argtypes, args, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not create the %s of a continuous view of %s", suffix + 1, kind);
	CommandCounterIncrement();
	return get_relname_relid(panes_name, nspid);
}

/* "prefix.k1, prefix.k2, ..." for n keys, each after a comma with comma. */
char *
PanesKeyList(const char *prefix, int n, bool comma)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < n; i++)
		appendStringInfo(&s, "%s%s.k%d", i > 0 || comma ? ", " : "", prefix, i + 1);
	return s.data;
}

/*
 * PanesTargets deparses the view's target list over the panes' columns
 * (panes_cxt), each expression rewritten by mutator: into targets as
 * "expr AS name, ...", into exprs as "expr, ...".
 */
void
PanesTargets(List *target_list, Node *(*mutator) (Node *node, void *context), void *context,
			 List *panes_cxt, StringInfo targets, StringInfo exprs)
{
	ListCell   *lc;
	bool		first = true;

	foreach(lc, target_list)
	{
		TargetEntry *tle = lfirst(lc);
		char	   *expr;

		if (tle->resjunk)
			continue;
		expr = deparse_expression(mutator((Node *) copyObject(tle->expr), context),
								  panes_cxt, true, false);
		appendStringInfo(targets, "%s%s AS %s", first ? "" : ", ", expr,
						 quote_identifier(tle->resname ? tle->resname : "?column?"));
		appendStringInfo(exprs, "%s%s", first ? "" : ", ", expr);
		first = false;
	}
}

/*
 * PanesCreateView creates, as its caller, the view <name> users read:
 * "SELECT targets FROM windows x" with the conditions having and kept
 * (either NULL).  Returns it.  Within SPI.
 */
Oid
PanesCreateView(Oid nspid, const char *name, const char *targets, const char *windows,
				const char *having, const char *kept)
{
	StringInfoData q;

	initStringInfo(&q);
	appendStringInfo(&q, "CREATE VIEW %s AS SELECT %s\n  FROM %s x",
					 quote_qualified_identifier(get_namespace_name(nspid), name), targets, windows);
	if (having != NULL || kept != NULL)
		appendStringInfo(&q, "\n WHERE %s%s%s", having != NULL ? having : "",
						 having != NULL && kept != NULL ? " AND " : "", kept != NULL ? kept : "");
	panes_spi_run(q.data, SPI_OK_UTILITY);
	CommandCounterIncrement();
	return get_relname_relid(name, nspid);
}

/*
 * PanesKeptSql is a condition that the end of a window (end, an expression
 * of type window_type) is after the windows that retention removed: the
 * event time the panes' last flush made windows final by (over a stream)
 * or recorded (over a table), minus delay and retention.  True before the
 * first flush.
 */
char *
PanesKeptSql(Oid panes_relid, const char *end, Oid window_type, int64 delay_us, int64 retention_us)
{
	char	   *horizon = psprintf("(COALESCE(v.final_event_time, v.max_event_time, '-infinity'::pg_catalog.timestamptz)"
								   " OPERATOR(pg_catalog.-) %s)",
								   PanesIntervalLiteral(delay_us + retention_us));

	/* the event time of a timestamp (without time zone) is kept as if UTC */
	if (window_type == TIMESTAMPOID)
		horizon = psprintf("pg_catalog.timezone('UTC', %s)", horizon);
	return psprintf("%s OPERATOR(pg_catalog.>) (SELECT %s FROM flowstate.view v"
					" WHERE v.view OPERATOR(pg_catalog.=) %u::pg_catalog.oid)",
					end, horizon, panes_relid);
}

/*
 * PanesFinalFunction creates, for the view users read of a continuous view
 * of hopping, cumulating or session windows (view_relid, <name>), the
 * function <name>_final(lo, hi) that the panes' flush calls to announce
 * the windows it makes final (announce_final_windows): the windows whose
 * final expression (of windows, the view's rows before its columns are
 * computed, as x) is after lo and at or before hi, as their start, end and
 * the view's row (of exprs), those HAVING keeps.  A function of SQL body
 * (BEGIN ATOMIC): it names the panes and the view by their oids, and goes
 * with the view.
 */
Oid
PanesFinalFunction(Oid nspid, const char *name, Oid view_relid, Oid window_type,
				   const char *windows, const char *exprs, const char *start,
				   const char *end, const char *final, const char *having)
{
	char	   *nsp = get_namespace_name(nspid);
	char	   *fname = psprintf("%s_final", name);
	char	   *type = format_type_be(window_type);
	char	   *view = quote_qualified_identifier(nsp, name);
	List	   *names = list_make2(makeString(nsp), makeString(fname));
	Oid			argtypes[2] = {window_type, window_type};
	Oid			fn;
	ObjectAddress fn_address;
	ObjectAddress view_address;

	if (strlen(fname) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("the function \"%s\" of the view would have a name longer than %d bytes",
						fname, NAMEDATALEN - 1),
				 errhint("Give the view a shorter name.")));
	if (OidIsValid(LookupFuncName(names, 2, argtypes, true)))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_FUNCTION),
				 errmsg("function \"%s\" already exists", fname),
				 errhint("The view's final windows are read by a function of that name: drop it, or name the view otherwise.")));
	panes_spi_run(psprintf("CREATE FUNCTION %s(lo %s, hi %s)"
					 " RETURNS TABLE (window_start %s, window_end %s, r %s)"
					 " LANGUAGE sql STABLE"
					 " BEGIN ATOMIC"
					 " SELECT %s, %s, ROW(%s)::%s FROM %s x"
					 " WHERE %s OPERATOR(pg_catalog.>) lo AND %s OPERATOR(pg_catalog.<=) hi%s%s;"
					 " END",
					 quote_qualified_identifier(nsp, fname), type, type, type, type, view,
					 start, end, exprs, view, windows, final, final,
					 having != NULL ? " AND " : "", having != NULL ? having : ""),
			SPI_OK_UTILITY);
	CommandCounterIncrement();
	fn = LookupFuncName(names, 2, argtypes, false);
	ObjectAddressSet(fn_address, ProcedureRelationId, fn);
	ObjectAddressSet(view_address, RelationRelationId, view_relid);
	recordDependencyOn(&fn_address, &view_address, DEPENDENCY_AUTO);
	return fn;
}

