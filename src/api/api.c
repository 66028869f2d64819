/*-------------------------------------------------------------------------
 *
 * api.c
 *	  The SQL functions of continuous views: create_view, drop_view,
 *	  rewrite_view (ALTER EXTENSION UPDATE).  What readers take from
 *	  shared memory is in reader.c, wait_for in wait.c.
 *
 * Anatomy of a continuous view (all created by create_view, in the
 * caller's transaction):
 *	- the *definition*, flowstate.view_<id>_query: the defining query as a
 *	  plain view, owned by the view's owner, so that reading it needs the
 *	  owner's rights as the batch query does.  It depends on the source's
 *	  columns like any view, and is the batch query the continuous view
 *	  equals;
 *	- the *state table*, flowstate.view_<id>_state (state_table.c), owned
 *	  by the bootstrap superuser, readable by the view's owner while the
 *	  owner may read the source (a policy, security.c);
 *	- the *view* users read, owned by the creator, in the schema they named;
 *	- a row in flowstate.view.
 * The definition and the state table depend on the view (automatically
 * dropped with it) and on the extension; the view depends on the
 * definition, so DROP TABLE of the source with CASCADE drops it all.  An
 * event trigger removes the catalog row whatever dropped the view.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_extension.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/tablecmds.h"
#include "commands/view.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_func.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/varlena.h"

#include "api/api.h"
#include "api/hop.h"
#include "api/multiset.h"
#include "api/session.h"
#include "engine/backfill.h"
#include "fs_catalog/partition.h"
#include "query/query.h"
#include "fs_catalog/security.h"
#include "sources/kafka/stream.h"
#include "state/state_table.h"

extern PGDLLEXPORT Datum flowstate_create_view(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_create_view);
extern PGDLLEXPORT Datum flowstate_drop_view(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_drop_view);
extern PGDLLEXPORT Datum flowstate_on_sql_drop(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_on_sql_drop);
extern PGDLLEXPORT Datum flowstate_rewrite_view(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_rewrite_view);

/* Run what follows as the bootstrap superuser; returns what to restore. */
static void
become_superuser(Oid *save_userid, int *save_sec)
{
	GetUserIdAndSecContext(save_userid, save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, *save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

static void
spi_exec(const char *sql, int expected)
{
	int			ret = SPI_execute(sql, false, 0);

	if (ret != expected)
		elog(ERROR, "flowstate statement failed (%s): %s", SPI_result_code_string(ret), sql);
}

/*
 * An error context that moves the position of an error in the defining
 * query from the calling statement into that query, as PostgreSQL does for
 * the bodies of SQL functions.
 */
static void
query_error_position(void *arg)
{
	int			position = geterrposition();

	if (position > 0)
	{
		errposition(0);
		internalerrposition(position);
		internalerrquery((const char *) arg);
	}
}

/* Refuse a function that changes or waits for the workers on a standby. */
void
ApiRefuseOnStandby(const char *function)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run on a standby", function),
				 errdetail("Continuous views are maintained on the primary; a standby shows their state as its replay of the WAL brings it."),
				 errhint("Call %s on the primary.", function)));
}

/* An interval option: non-negative and without months. */
static int64
interval_option(FunctionCallInfo fcinfo, int argno, const char *name, int64 ifnull)
{
	Interval   *iv;

	if (PG_ARGISNULL(argno))
		return ifnull;
	iv = PG_GETARG_INTERVAL_P(argno);
	if (iv->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s cannot be given in months or years", name),
				 errhint("Give %s in days, hours, minutes or seconds.", name)));
	if (iv->day < 0 || iv->time < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be negative", name),
				 errhint("Pass an interval of zero or more, or leave %s out.", name)));
	return iv->day * USECS_PER_DAY + iv->time;
}

/* An interval of us microseconds, in days and time. */
static Interval *
microseconds_interval(int64 us)
{
	Interval   *iv = palloc0(sizeof(Interval));

	iv->day = (int32) (us / USECS_PER_DAY);
	iv->time = us % USECS_PER_DAY;
	return iv;
}

static int64
memory_option(FunctionCallInfo fcinfo, int argno)
{
	char	   *value;
	int			kb;
	const char *hintmsg = NULL;

	if (PG_ARGISNULL(argno))
		return 0;
	value = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (!parse_int(value, &kb, GUC_UNIT_KB, &hintmsg) || kb < 1024)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid memory_limit \"%s\"", value),
				 errhint("Give a size of at least 1MB, such as '64MB' or '1GB'.")));
	return (int64) kb * 1024;
}

static char *
interval_text(FunctionCallInfo fcinfo, int argno)
{
	if (PG_ARGISNULL(argno))
		return "NULL";
	return quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																  PG_GETARG_DATUM(argno))));
}

/* Refuse a source whose updates and deletes the WAL would not describe whole. */
static void
check_replica_identity(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	char		ident = rel->rd_rel->relreplident;
	char	   *name = pstrdup(RelationGetRelationName(rel));

	table_close(rel, AccessShareLock);
	if (ident != REPLICA_IDENTITY_FULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table \"%s\" must have REPLICA IDENTITY FULL to feed a continuous view",
						name),
				 errdetail("A continuous view reads the old version of updated and deleted rows from the WAL."),
				 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL.",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
													name))));
}

static void
record_dependency(Oid depender, Oid referenced, DependencyType type)
{
	ObjectAddress a = {RelationRelationId, depender, 0};
	ObjectAddress b = {RelationRelationId, referenced, 0};

	recordDependencyOn(&a, &b, type);
}

static void
depend_on_extension(Oid relid)
{
	ObjectAddress a = {RelationRelationId, relid, 0};
	ObjectAddress b = {ExtensionRelationId, get_extension_oid("flowstate", false), 0};

	recordDependencyOn(&a, &b, DEPENDENCY_NORMAL);
}

/*
 * Whether the SQL objects of 0.5.0 are there: the views read partial states
 * (QueryViewSql).  Before ALTER EXTENSION UPDATE, new views are written as
 * the older ones, and the update rewrites them all (flowstate_rewrite_view).
 */
static bool
partial_states_installed(void)
{
	return OidIsValid(LookupFuncName(list_make2(makeString("flowstate"),
												makeString("unflushed_states")),
									 1, (Oid[]) {REGCLASSOID}, true));
}

/*
 * Refuse what retention, notify and changelog cannot do for the view name
 * of windows of extent (their size; for hopping and cumulating windows,
 * the largest).
 */
static void
check_final_options(Oid nspid, const char *name, int64 allowed_lateness, int64 retention,
					bool notify, bool changelog, int64 extent)
{
	if ((notify || changelog) && allowed_lateness < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("notify and changelog need allowed_lateness"),
				 errhint("Give allowed_lateness too: windows are announced when they become final, and final only with allowed_lateness.")));
	if (notify && strlen(get_namespace_name(nspid)) + 1 + strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_NAME_TOO_LONG),
				 errmsg("the notification channel \"%s.%s\" of the view would be longer than %d bytes",
						get_namespace_name(nspid), name, NAMEDATALEN - 1),
				 errhint("Give the view a shorter name.")));
	if (changelog)
	{
		char	   *changelog_name = psprintf("%s_changelog", name);

		if (strlen(changelog_name) >= NAMEDATALEN)
			ereport(ERROR,
					(errcode(ERRCODE_NAME_TOO_LONG),
					 errmsg("the changelog table \"%s\" of the view would have a name longer than %d bytes",
							changelog_name, NAMEDATALEN - 1),
					 errhint("Give the view a shorter name.")));
		if (OidIsValid(get_relname_relid(changelog_name, nspid)))
			ereport(ERROR,
					(errcode(ERRCODE_DUPLICATE_TABLE),
					 errmsg("relation \"%s\" already exists", changelog_name),
					 errhint("The view's changelog table takes that name: drop the relation, or name the view otherwise.")));
	}
	if (retention >= 0 && allowed_lateness < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention needs allowed_lateness"),
				 errhint("Give allowed_lateness too: windows leave once final, and final only with allowed_lateness.")));
	if (retention >= 0 && retention < extent + allowed_lateness)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("retention must be at least the window's size plus allowed_lateness"),
				 errhint("Give a retention of at least %s.",
						 DatumGetCString(DirectFunctionCall1(interval_out,
															 IntervalPGetDatum(microseconds_interval(extent + allowed_lateness)))))));
}

/*
 * The changelog table of the view name, as the caller, who owns it: the
 * view's columns and finalized_at.  Returns it.
 */
static Oid
create_changelog(Oid nspid, const char *name)
{
	char	   *changelog_name = psprintf("%s_changelog", name);
	char	   *qualified = quote_qualified_identifier(get_namespace_name(nspid), changelog_name);

	spi_exec(psprintf("CREATE TABLE %s AS SELECT * FROM %s WITH NO DATA", qualified,
					  quote_qualified_identifier(get_namespace_name(nspid), name)),
			 SPI_OK_UTILITY);
	spi_exec(psprintf("ALTER TABLE %s ADD COLUMN finalized_at timestamptz NOT NULL DEFAULT pg_catalog.now()",
					  qualified),
			 SPI_OK_UTILITY);
	CommandCounterIncrement();
	return get_relname_relid(changelog_name, nspid);
}

/*
 * Create a continuous view with DISTINCT or ordered-set aggregates
 * (multiset.c), over tumbling windows or none, or over hopping or
 * cumulating windows (hop), as the caller; the catalog says whose values
 * <name>_values holds.
 */
static Oid
create_multiset_view(FunctionCallInfo fcinfo, Oid nspid, const char *name, Query *query,
					 MultisetSpec *multiset, const HopSpec *hop, bool final_options)
{
	Oid			view_relid;
	Oid			values_relid;
	ObjectAddress values_address;
	ObjectAddress view_address;
	Datum		args[5];
	Oid			types[5] = {OIDOID, OIDOID, TEXTOID, INTERVALOID, INTERVALOID};
	Oid			save_userid;
	int			save_sec;
	int			search_path_nest;

	if (final_options)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("notify and changelog are not supported for a continuous view with DISTINCT or ordered-set aggregates yet"),
				 errhint("Create the view without them.")));
	if (get_attnum(get_relname_relid("view", get_namespace_oid("flowstate", false)),
				   "final_function") == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("DISTINCT and ordered-set aggregates need flowstate 0.8.0"),
				 errhint("Run ALTER EXTENSION flowstate UPDATE.")));
	view_relid = MultisetCreateView(nspid, name, query, multiset, hop,
									PG_GETARG_DATUM(2), PG_ARGISNULL(2),
									PG_GETARG_DATUM(3), PG_ARGISNULL(3),
									PG_GETARG_DATUM(4), PG_ARGISNULL(4),
									PG_NARGS() > 5 ? PG_GETARG_DATUM(5) : (Datum) 0,
									PG_NARGS() <= 5 || PG_ARGISNULL(5));
	values_relid = get_relname_relid(psprintf("%s_values", name), nspid);

	/*
	 * The values go with the view; the catalog says whose they are and,
	 * over hopping or cumulating windows, how their panes become final (a
	 * pane is late once every window holding it is: ViewFinalCutoff).
	 */
	search_path_nest = SecurityRestrictSearchPath();
	become_superuser(&save_userid, &save_sec);
	ObjectAddressSet(values_address, RelationRelationId, values_relid);
	ObjectAddressSet(view_address, RelationRelationId, view_relid);
	recordDependencyOn(&values_address, &view_address, DEPENDENCY_AUTO);
	SPI_connect();
	args[0] = ObjectIdGetDatum(view_relid);
	args[1] = ObjectIdGetDatum(values_relid);
	if (hop != NULL)
	{
		args[2] = CStringGetTextDatum(hop->cumulate ? "cumulate" : "hop");
		args[3] = IntervalPGetDatum(hop->size);
		args[4] = IntervalPGetDatum(hop->slide);
	}
	if (SPI_execute_with_args(hop == NULL ?
							  "UPDATE flowstate.view SET hop_view = $1 WHERE view = $2" :
							  "UPDATE flowstate.view SET hop_view = $1, hop_kind = $3, hop_size = $4,"
							  " hop_slide = $5 WHERE view = $2",
							  hop == NULL ? 2 : 5, types, args, NULL, false, 0) != SPI_OK_UPDATE ||
		SPI_processed != 1)
		elog(ERROR, "could not record the values of continuous view %s", name);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	SecurityRestoreSearchPath(search_path_nest);
	return view_relid;
}

/*
 * flowstate_create_view creates a continuous view (see the file header).
 */
Datum
flowstate_create_view(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *query_text;
	RangeVar   *rv;
	Oid			nspid;
	Oid			existing;
	Oid			owner = GetUserId();
	Oid			save_userid;
	int			save_sec;
	Query	   *query;
	RawStmt    *raw;
	ViewDef		def;
	int64		watermark_delay;
	int64		allowed_lateness;
	int64		memory_limit;
	int64		retention;
	HopSpec		hop;
	SessionSpec session;
	MultisetSpec multiset;
	bool		is_session;
	bool		notify;
	bool		changelog;
	Oid			changelog_relid = InvalidOid;
	bool		stream;
	char	   *time_zone;
	bool		has_time_zone;
	int32		view_id;
	char	   *def_name;
	char	   *state_name;
	char	   *state_qualified;
	Oid			flowstate_nsp;
	ViewStmt   *vstmt;
	StringInfoData sql;
	char	   *owner_name;
	int			search_path_nest;
	ErrorContextCallback errcallback;

	ApiRefuseOnStandby("flowstate.create_view()");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name and the query of a continuous view must not be null"),
				 errhint("Call flowstate.create_view('name', 'SELECT ... GROUP BY ...').")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	query_text = text_to_cstring(PG_GETARG_TEXT_PP(1));
	watermark_delay = interval_option(fcinfo, 2, "watermark_delay", 0);
	allowed_lateness = interval_option(fcinfo, 3, "allowed_lateness", -1);
	memory_limit = memory_option(fcinfo, 4);
	/* the SQL function of releases before 0.6.0 has none of these */
	retention = PG_NARGS() > 5 ? interval_option(fcinfo, 5, "retention", -1) : -1;
	notify = PG_NARGS() > 6 && !PG_ARGISNULL(6) && PG_GETARG_BOOL(6);
	changelog = PG_NARGS() > 7 && !PG_ARGISNULL(7) && PG_GETARG_BOOL(7);

	rv = makeRangeVarFromNameList(textToQualifiedNameList(PG_GETARG_TEXT_PP(0)));
	nspid = RangeVarGetAndCheckCreationNamespace(rv, NoLock, &existing);
	if (isAnyTempNamespace(nspid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a continuous view cannot be temporary"),
				 errhint("Create it in a permanent schema.")));
	if (OidIsValid(existing))
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_TABLE),
				 errmsg("relation \"%s\" already exists", name),
				 errhint("Choose another name, or drop the existing relation first.")));

	/*
	 * The query, as the caller: name resolution and privileges are theirs.
	 * Its errors point into the query text, not into the call.
	 */
	errcallback.callback = query_error_position;
	errcallback.arg = query_text;
	errcallback.previous = error_context_stack;
	error_context_stack = &errcallback;
	query = QueryParse(query_text, &raw);
	is_session = SessionFind(query, &session);
	if (is_session || HopFind(query, &hop))
	{
		Oid			view_relid;
		Oid			panes_relid;
		Oid			final_function = InvalidOid;
		ObjectAddress panes_address;
		ObjectAddress view_address;
		Datum		args[9];
		Oid			types[9] = {OIDOID, OIDOID, TEXTOID, INTERVALOID, INTERVALOID,
		INTERVALOID, BOOLOID, OIDOID, OIDOID};
		char		nulls[9] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
		bool		has_hop_columns;
		/* a session is final gap after its last pane ends: two gaps */
		int64		extent = is_session ? 2 * session.gap_us : hop.size_us;

		error_context_stack = errcallback.previous;
		if (MultisetAggregates(query))
		{
			if (is_session)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("DISTINCT and ordered-set aggregates are not supported in a continuous view of session windows yet"),
						 errhint("Group by flowstate.tumble() or flowstate.hop(), or keep the distinct values as a GROUP BY key of the view.")));
			/* (notify and changelog are refused below) */
			check_final_options(nspid, rv->relname, allowed_lateness, retention, false, false,
								hop.size_us);
			if (allowed_lateness >= 0 &&
				get_attnum(get_relname_relid("view", get_namespace_oid("flowstate", false)),
						   "hop_kind") == InvalidAttrNumber)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("allowed_lateness for hopping or cumulating windows needs flowstate 0.7.0"),
						 errhint("Run ALTER EXTENSION flowstate UPDATE.")));
			(void) MultisetFind(query, true, &multiset);
			PG_RETURN_OID(create_multiset_view(fcinfo, nspid, rv->relname, query, &multiset, &hop,
											   notify || changelog));
		}
		/* the catalog columns of 0.7.0 say how the panes' windows become final */
		has_hop_columns = get_attnum(get_relname_relid("view", get_namespace_oid("flowstate", false)),
									 "hop_kind") != InvalidAttrNumber;
		if (allowed_lateness >= 0 && !has_hop_columns)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("allowed_lateness for hopping or cumulating windows needs flowstate 0.7.0"),
					 errhint("Run ALTER EXTENSION flowstate UPDATE.")));
		if ((retention >= 0 || notify || changelog) &&
			get_attnum(get_relname_relid("view", get_namespace_oid("flowstate", false)),
					   "final_function") == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("retention, notify and changelog for hopping, cumulating or session windows need flowstate 0.8.0"),
					 errhint("Run ALTER EXTENSION flowstate UPDATE.")));
		check_final_options(nspid, rv->relname, allowed_lateness, retention, notify, changelog, extent);

		if (is_session)
			view_relid = SessionCreateView(nspid, rv->relname, query, &session,
										   PG_GETARG_DATUM(2), PG_ARGISNULL(2),
										   PG_GETARG_DATUM(3), PG_ARGISNULL(3),
										   PG_GETARG_DATUM(4), PG_ARGISNULL(4),
										   retention, notify || changelog ? &final_function : NULL);
		else
			view_relid = HopCreateView(nspid, rv->relname, query, &hop,
									   PG_GETARG_DATUM(2), PG_ARGISNULL(2),
									   PG_GETARG_DATUM(3), PG_ARGISNULL(3),
									   PG_GETARG_DATUM(4), PG_ARGISNULL(4),
									   retention, notify || changelog ? &final_function : NULL);
		panes_relid = get_relname_relid(psprintf("%s_panes", rv->relname), nspid);
		if (changelog)
		{
			SPI_connect();
			changelog_relid = create_changelog(nspid, rv->relname);
			SPI_finish();
		}

		/* the panes go with the view; the catalog says whose panes they are */
		search_path_nest = SecurityRestrictSearchPath();
		become_superuser(&save_userid, &save_sec);
		ObjectAddressSet(panes_address, RelationRelationId, panes_relid);
		ObjectAddressSet(view_address, RelationRelationId, view_relid);
		recordDependencyOn(&panes_address, &view_address, DEPENDENCY_AUTO);
		if (OidIsValid(changelog_relid))
			record_dependency(changelog_relid, view_relid, DEPENDENCY_AUTO);
		SPI_connect();
		args[0] = ObjectIdGetDatum(view_relid);
		args[1] = ObjectIdGetDatum(panes_relid);
		args[2] = CStringGetTextDatum(is_session ? "session" : hop.cumulate ? "cumulate" : "hop");
		args[3] = IntervalPGetDatum(is_session ? session.gap : hop.size);
		args[4] = IntervalPGetDatum(is_session ? session.gap : hop.slide);
		args[5] = IntervalPGetDatum(microseconds_interval(Max(retention, 0)));
		nulls[5] = retention >= 0 ? ' ' : 'n';
		args[6] = BoolGetDatum(notify);
		args[7] = ObjectIdGetDatum(changelog_relid);
		nulls[7] = OidIsValid(changelog_relid) ? ' ' : 'n';
		args[8] = ObjectIdGetDatum(final_function);
		nulls[8] = OidIsValid(final_function) ? ' ' : 'n';
		if (SPI_execute_with_args(!has_hop_columns ?
								  "UPDATE flowstate.view SET hop_view = $1 WHERE view = $2" :
								  retention >= 0 || notify || changelog ?
								  "UPDATE flowstate.view SET hop_view = $1, hop_kind = $3, hop_size = $4,"
								  " hop_slide = $5, retention = $6, notify = $7, changelog = $8,"
								  " final_function = $9 WHERE view = $2" :
								  "UPDATE flowstate.view SET hop_view = $1, hop_kind = $3, hop_size = $4,"
								  " hop_slide = $5 WHERE view = $2",
								  !has_hop_columns ? 2 : retention >= 0 || notify || changelog ? 9 : 5,
								  types, args, nulls, false, 0) != SPI_OK_UPDATE ||
			SPI_processed != 1)
			elog(ERROR, "could not record the panes of continuous view %s", name);
		SPI_finish();
		SetUserIdAndSecContext(save_userid, save_sec);
		SecurityRestoreSearchPath(search_path_nest);
		PG_RETURN_OID(view_relid);
	}
	if (MultisetFind(query, false, &multiset))
	{
		error_context_stack = errcallback.previous;
		PG_RETURN_OID(create_multiset_view(fcinfo, nspid, rv->relname, query, &multiset, NULL,
										   notify || changelog));
	}
	QueryCheck(query);
	(void) ExecCheckRTPerms(query->rtable, true);
	memset(&def, 0, sizeof(def));
	QueryDescribe(query, &def);
	error_context_stack = errcallback.previous;
	SecurityCheckRowSecurity(def.source_relid, owner,
							 quote_qualified_identifier(get_namespace_name(nspid), rv->relname));
	if (def.join.present)
		SecurityCheckRowSecurity(def.join.relid, owner,
								 quote_qualified_identifier(get_namespace_name(nspid), rv->relname));
	stream = QueryIsStream(def.source_relid);

	/* the view evaluates in this session's time zone (catalog column of 0.6.0) */
	time_zone = pstrdup(pg_get_timezone_name(session_timezone));
	has_time_zone = get_attnum(get_relname_relid("view", get_namespace_oid("flowstate", false)),
							   "time_zone") != InvalidAttrNumber;
	if (!has_time_zone && QueryUsesTimeZone(query))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a continuous view that depends on the time zone needs flowstate 0.6.0"),
				 errhint("Run ALTER EXTENSION flowstate UPDATE.")));

	if (stream)
		(void) StreamLoad(def.source_relid, CurrentMemoryContext);	/* checks it */
	else if (get_rel_relkind(def.source_relid) == RELKIND_PARTITIONED_TABLE)
		PartitionCheckLeaves(def.source_relid, def.source_relid);
	else
		check_replica_identity(def.source_relid);
	if (allowed_lateness >= 0 && !(def.window.present && def.window.size_us > 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("allowed_lateness needs a tumbling window of fixed size"),
				 errhint("Group by flowstate.tumble(ts, size), date_bin(size, ts, origin) or date_trunc(unit, ts) of a timestamp.")));

	if (!has_time_zone && (notify || changelog || retention >= 0))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("retention, notify and changelog need flowstate 0.6.0"),
				 errhint("Run ALTER EXTENSION flowstate UPDATE.")));
	check_final_options(nspid, rv->relname, allowed_lateness, retention, notify, changelog,
						def.window.size_us);

	flowstate_nsp = get_namespace_oid("flowstate", false);
	owner_name = GetUserNameFromId(owner, false);

	/*
	 * The definition: the defining query, parsed again, as a plain view.
	 * Parsing runs the input functions of its literals (a domain's CHECK):
	 * it is created as the caller, under the view's own name for now (which
	 * is free), and moved into flowstate below.
	 */
	vstmt = makeNode(ViewStmt);
	vstmt->view = makeRangeVar(get_namespace_name(nspid), rv->relname, -1);
	(void) QueryParse(query_text, &raw);
	vstmt->query = raw->stmt;
	vstmt->withCheckOption = NO_CHECK_OPTION;
	memset(&def, 0, sizeof(def));
	def.def_relid = DefineView(vstmt, query_text, raw->stmt_location, raw->stmt_len).objectId;
	CommandCounterIncrement();

	/* from here on, flowstate's own statements: names resolve in pg_catalog */
	search_path_nest = SecurityRestrictSearchPath();
	become_superuser(&save_userid, &save_sec);
	SPI_connect();
	if (SPI_execute("SELECT nextval('flowstate.view_view_id_seq')::int4", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not allocate a continuous view id");
	{
		bool		isnull;

		view_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	def_name = psprintf("view_%d_query", view_id);
	RenameRelationInternal(def.def_relid, def_name, false, false);
	CommandCounterIncrement();
	initStringInfo(&sql);
	appendStringInfo(&sql, "ALTER VIEW %s SET SCHEMA flowstate",
					 quote_qualified_identifier(get_namespace_name(nspid), def_name));
	spi_exec(sql.data, SPI_OK_UTILITY);
	CommandCounterIncrement();
	query = QueryOfDefinition(def.def_relid);
	if (query == NULL)
		elog(ERROR, "definition of a new continuous view not found");
	QueryCheck(query);
	QueryDescribe(query, &def);

	/* the state table */
	state_name = StateTableName(view_id);
	state_qualified = quote_qualified_identifier("flowstate", state_name);
	StateTableCreate(&def.layout, state_qualified, state_name);
	CommandCounterIncrement();
	def.state_relid = get_relname_relid(state_name, flowstate_nsp);

	resetStringInfo(&sql);
	appendStringInfo(&sql, "GRANT SELECT ON %s TO %s", state_qualified,
					 quote_identifier(owner_name));
	spi_exec(sql.data, SPI_OK_UTILITY);

	/* the view users read, as the caller, who owns it */
	SetUserIdAndSecContext(save_userid, save_sec);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "CREATE VIEW %s AS %s",
					 quote_qualified_identifier(get_namespace_name(nspid), rv->relname),
					 QueryViewSql(&def, state_qualified, partial_states_installed()));
	spi_exec(sql.data, SPI_OK_UTILITY);
	CommandCounterIncrement();
	def.view_relid = get_relname_relid(rv->relname, nspid);

	/* its changelog table, as the caller, who owns it: the view's columns */
	if (changelog)
		changelog_relid = create_changelog(nspid, rv->relname);

	become_superuser(&save_userid, &save_sec);
	if (OidIsValid(changelog_relid))
		record_dependency(changelog_relid, def.view_relid, DEPENDENCY_AUTO);

	/*
	 * The definition is part of the view: dropped with it, and not alone
	 * (the view is named instead).  One edge only: pg_dump cannot order two
	 * relations that depend on each other, and says so.
	 */
	record_dependency(def.def_relid, def.view_relid, DEPENDENCY_INTERNAL);
	record_dependency(def.state_relid, def.view_relid, DEPENDENCY_AUTO);
	depend_on_extension(def.def_relid);
	depend_on_extension(def.state_relid);

	/*
	 * The state is served while the view's owner may read the source.  (The
	 * SQL objects of 0.2.0 lack the policy's function: ALTER EXTENSION
	 * UPDATE adds it, and the policy to the views made until then.)
	 */
	if (OidIsValid(LookupFuncName(list_make2(makeString("flowstate"),
											 makeString("check_view_rights")),
								  2, (Oid[]) {OIDOID, OIDOID}, true)))
	{
		resetStringInfo(&sql);
		appendStringInfo(&sql, "ALTER TABLE %s ENABLE ROW LEVEL SECURITY", state_qualified);
		spi_exec(sql.data, SPI_OK_UTILITY);
		resetStringInfo(&sql);
		/* by name: a dump restores the policy for the restored relations */
		appendStringInfo(&sql, "CREATE POLICY owner_may_read ON %s FOR SELECT"
						 " USING ((SELECT flowstate.check_view_rights(%s::pg_catalog.regclass,"
						 " %s::pg_catalog.regclass)))",
						 state_qualified,
						 quote_literal_cstr(quote_qualified_identifier(get_namespace_name(get_rel_namespace(def.view_relid)),
																	   get_rel_name(def.view_relid))),
						 quote_literal_cstr(quote_qualified_identifier(get_namespace_name(get_rel_namespace(def.def_relid)),
																	   get_rel_name(def.def_relid))));
		spi_exec(sql.data, SPI_OK_UTILITY);
	}

	resetStringInfo(&sql);
	appendStringInfo(&sql, "COMMENT ON TABLE %s IS %s", state_qualified,
					 quote_literal_cstr(psprintf("state of continuous view %s",
												 quote_qualified_identifier(get_namespace_name(nspid),
																			rv->relname))));
	spi_exec(sql.data, SPI_OK_UTILITY);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "COMMENT ON VIEW %s IS %s",
					 quote_qualified_identifier("flowstate", def_name),
					 quote_literal_cstr(psprintf("defining query of continuous view %s",
												 quote_qualified_identifier(get_namespace_name(nspid),
																			rv->relname))));
	spi_exec(sql.data, SPI_OK_UTILITY);

	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO flowstate.view (view_id, view, definition, state_table, source,"
					 " query, window_kind, window_size, watermark_delay, allowed_lateness,"
					 " memory_limit, status%s) VALUES (%d, %u, %u, %u, %u, %s, %s, %s, %s, %s, %s, %s%s)",
					 has_time_zone ? ", time_zone, retention, notify, changelog" : "",
					 view_id, def.view_relid, def.def_relid, def.state_relid, def.source_relid,
					 quote_literal_cstr(query_text),
					 def.window.present ? "'tumble'" : "'none'",
					 def.window.present ?
					 quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																			IntervalPGetDatum(def.window.size)))) :
					 "NULL",
					 PG_ARGISNULL(2) ? "'0'" : interval_text(fcinfo, 2),
					 interval_text(fcinfo, 3),
					 memory_limit > 0 ? psprintf(INT64_FORMAT, memory_limit) : "NULL",
					 /* a stream's view starts at its start position: no backfill */
					 stream ? "'running'" : "'backfilling'",
					 has_time_zone ? psprintf(", %s, %s, %s, %s", quote_literal_cstr(time_zone),
											  retention >= 0 ? interval_text(fcinfo, 5) : "NULL",
											  notify ? "true" : "false",
											  OidIsValid(changelog_relid) ? psprintf("%u", changelog_relid) : "NULL") : "");
	spi_exec(sql.data, SPI_OK_INSERT);
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	SecurityRestoreSearchPath(search_path_nest);

	(void) watermark_delay;
	ApiNoteCatalogChanged();
	PG_RETURN_OID(def.view_relid);
}

/*
 * flowstate_rewrite_view writes the query of a continuous view again, as
 * create_view writes it now: ALTER EXTENSION UPDATE calls it for each view.
 * The view keeps its relation, owner, privileges and columns; its query's
 * dependencies are recorded anew.  (CREATE OR REPLACE VIEW would make the
 * view a member of the extension, which PostgreSQL refuses in an update.)
 */
Datum
flowstate_rewrite_view(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	ViewDef		def;
	Query	   *query;
	Query	   *view_query;
	RawStmt    *raw;
	char	   *sql;
	char	   *state_qualified;
	Relation	rel;
	int			nest;
	bool		isnull;

	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_VIEW, get_rel_name(relid));
	memset(&def, 0, sizeof(def));
	nest = SecurityRestrictSearchPath();
	SPI_connect();
	if (SPI_execute_with_args("SELECT definition::pg_catalog.oid, state_table::pg_catalog.oid"
							  "  FROM flowstate.view WHERE view = $1",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a continuous view", get_rel_name(relid)),
				 errhint("Pass a view made by flowstate.create_view().")));
	def.def_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
												   SPI_tuptable->tupdesc, 1, &isnull));
	def.state_relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
													 SPI_tuptable->tupdesc, 2, &isnull));
	SPI_finish();

	query = QueryOfDefinition(def.def_relid);
	if (query == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the definition of continuous view \"%s\" is missing", get_rel_name(relid)),
				 errhint("Drop the continuous view and create it again.")));
	QueryDescribe(query, &def);
	state_qualified = quote_qualified_identifier("flowstate", get_rel_name(def.state_relid));
	sql = QueryViewSql(&def, state_qualified, partial_states_installed());

	/* the same columns, or the view's readers would see another relation */
	view_query = QueryParse(sql, &raw);
	rel = relation_open(relid, AccessExclusiveLock);
	if (list_length(view_query->targetList) != RelationGetDescr(rel)->natts)
		elog(ERROR, "the query of continuous view \"%s\" has other columns", get_rel_name(relid));
	for (int i = 0; i < RelationGetDescr(rel)->natts; i++)
	{
		TargetEntry *tle = list_nth(view_query->targetList, i);
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), i);

		if (exprType((Node *) tle->expr) != att->atttypid)
			elog(ERROR, "the query of continuous view \"%s\" has other columns",
				 get_rel_name(relid));
		/* the view keeps its column names */
		tle->resname = pstrdup(NameStr(att->attname));
	}
	relation_close(rel, NoLock);
	StoreViewQuery(relid, view_query, true);
	CommandCounterIncrement();
	SecurityRestoreSearchPath(nest);
	PG_RETURN_VOID();
}

/* The id of the continuous view that is relation relid, or -1. */
static int32
continuous_view_id(Oid relid)
{
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	int32		id = -1;
	int			nest = SecurityRestrictSearchPath();

	SPI_connect();
	if (SPI_execute_with_args("SELECT view_id FROM flowstate.view WHERE view = $1",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	if (SPI_processed > 0)
	{
		bool		isnull;

		id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	return id;
}

/*
 * flowstate_drop_view drops a continuous view: the view, its definition and
 * its state table.  The same as DROP VIEW on it.
 */
Datum
flowstate_drop_view(PG_FUNCTION_ARGS)
{
	char	   *name;
	bool		if_exists = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	RangeVar   *rv;
	Oid			relid;
	Oid			panes_relid;
	Oid			hop_relid = InvalidOid;
	int32		view_id;
	ObjectAddress address;
	ObjectAddresses *objects;
	Oid			save_userid;
	int			save_sec;
	Oid			type = INT4OID;
	Datum		arg;
	int			nest;

	ApiRefuseOnStandby("flowstate.drop_view()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the name of the continuous view to drop must not be null"),
				 errhint("Call flowstate.drop_view('name').")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	rv = makeRangeVarFromNameList(textToQualifiedNameList(PG_GETARG_TEXT_PP(0)));
	relid = RangeVarGetRelid(rv, AccessExclusiveLock, if_exists);
	if (!OidIsValid(relid))
	{
		ereport(NOTICE,
				(errmsg("continuous view \"%s\" does not exist, skipping", name)));
		PG_RETURN_VOID();
	}
	view_id = continuous_view_id(relid);
	if (view_id < 0 && OidIsValid(panes_relid = HopViewPanes(relid)))
	{
		/* a view of hopping windows: dropped with its panes, as they are */
		if (!pg_class_ownercheck(relid, GetUserId()))
			aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_VIEW, name);
		hop_relid = relid;
		relid = panes_relid;
		view_id = continuous_view_id(relid);
	}
	if (view_id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a continuous view", name),
				 errhint("Use DROP VIEW or DROP TABLE for other relations.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_VIEW, name);

	/*
	 * The view, its definition and its state table go together: a restore
	 * (pg_restore) does not bring back the dependencies between them, and
	 * the state table's policy names the view.
	 */
	objects = new_object_addresses();
	address.classId = RelationRelationId;
	address.objectSubId = 0;
	address.objectId = relid;
	add_exact_object_address(&address, objects);
	if (OidIsValid(hop_relid))
	{
		address.objectId = hop_relid;
		add_exact_object_address(&address, objects);
	}
	nest = SecurityRestrictSearchPath();
	SPI_connect();
	arg = Int32GetDatum(view_id);
	if (SPI_execute_with_args("SELECT definition::pg_catalog.oid, state_table::pg_catalog.oid"
							  "  FROM flowstate.view WHERE view_id = $1",
							  1, &type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read flowstate.view");
	for (int c = 1; SPI_processed == 1 && c <= 2; c++)
	{
		bool		isnull;
		Oid			part = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, c, &isnull));

		if (!isnull && OidIsValid(part) && get_rel_relkind(part) != '\0')
		{
			address.objectId = part;
			add_exact_object_address(&address, objects);
		}
	}
	SPI_finish();
	SecurityRestoreSearchPath(nest);
	performMultipleDeletions(objects, DROP_RESTRICT, 0);

	nest = SecurityRestrictSearchPath();
	become_superuser(&save_userid, &save_sec);
	SPI_connect();
	arg = Int32GetDatum(view_id);
	if (SPI_execute_with_args("DELETE FROM flowstate.view WHERE view_id = $1",
							  1, &type, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from flowstate.view");
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	SecurityRestoreSearchPath(nest);

	ApiNoteCatalogChanged();
	PG_RETURN_VOID();
}

/*
 * flowstate_on_sql_drop is the sql_drop event trigger: the catalog row of a
 * continuous view goes with its view, definition or state table, that of a
 * history with its table or its source.
 */
Datum
flowstate_on_sql_drop(PG_FUNCTION_ARGS)
{
	Oid			save_userid;
	int			save_sec;
	int			nest;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("flowstate.on_sql_drop() can only be called as an event trigger"),
				 errhint("It runs by itself on DROP statements.")));

	nest = SecurityRestrictSearchPath();
	become_superuser(&save_userid, &save_sec);
	SPI_connect();
	if (SPI_execute("DELETE FROM flowstate.view v"
					" USING pg_catalog.pg_event_trigger_dropped_objects() d"
					" WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
					"   AND d.objsubid = 0"
					"   AND d.objid IN (v.view, v.definition, v.state_table)",
					false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from flowstate.view");
	if (SPI_processed > 0)
		ApiNoteCatalogChanged();
	ApiHistoriesDropped();
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
	SecurityRestoreSearchPath(nest);
	PG_RETURN_NULL();
}

