/*-------------------------------------------------------------------------
 *
 * fdw.c
 *	  The flowstate_kafka foreign-data wrapper: Kafka topics declared as
 *	  foreign tables, their options validated when they are written.
 *
 *	- server: brokers (required) and any librdkafka consumer property, but
 *	  not secrets, which belong in user mappings (pg_user_mappings shows
 *	  their options only to the mapped user and the server's owner);
 *	- user mapping: librdkafka properties, secrets included;
 *	- foreign table: topic (required), format, delimiter, start, workers,
 *	  group_id (stream.c);
 *	- column: field or metadata (stream.c).
 * Properties flowstate manages itself (the consumer group, offset commits
 * and resets, the bootstrap list) are refused with a hint.
 *
 * A stream is read through continuous views only: scanning the foreign
 * table directly is refused (EXPLAIN works).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_attribute.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/rel.h"

#include "sources/kafka/consumer.h"
#include "sources/kafka/stream.h"

extern PGDLLEXPORT Datum flowstate_kafka_handler(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_kafka_handler);
extern PGDLLEXPORT Datum flowstate_kafka_validator(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(flowstate_kafka_validator);

/* librdkafka properties flowstate sets itself, and what to do instead. */
static const struct
{
	const char *name;
	const char *hint;
}			managed[] = {
	{"bootstrap.servers", "Give the brokers in the server's brokers option."},
	{"metadata.broker.list", "Give the brokers in the server's brokers option."},
	{"group.id", "Give the consumer group in the foreign table's group_id option."},
	{"enable.auto.commit", "flowstate commits offsets with the views' state."},
	{"enable.auto.offset.store", "flowstate commits offsets with the views' state."},
	{"auto.offset.reset", "Give the start position in the foreign table's start option."},
	{"enable.partition.eof", "flowstate sets it itself."},
	{"group.instance.id", "flowstate assigns partitions itself, without a consumer group protocol."},
};

/* Properties that hold secrets: user mappings only. */
static const char *const secrets[] = {
	"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
	"sasl.oauthbearer.client.secret", "sasl.oauthbearer.config", NULL
};

static bool
listed(const char *name, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(name, list[i]) == 0)
			return true;
	return false;
}

static void
check_property(DefElem *def, bool secrets_allowed)
{
	const char *value = defGetString(def);
	char	   *problem;

	for (int i = 0; i < lengthof(managed); i++)
		if (strcmp(def->defname, managed[i].name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" is set by flowstate", def->defname),
					 errhint("%s", managed[i].hint)));
	if (!secrets_allowed && listed(def->defname, secrets))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("option \"%s\" holds a secret and cannot be an option of the server",
						def->defname),
				 errhint("Put it in a user mapping: CREATE USER MAPPING FOR ... SERVER ... OPTIONS (\"%s\" '...').",
						 def->defname)));
	problem = KafkaCheckProperty(def->defname, value);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid Kafka property \"%s\": %s", def->defname, problem),
				 errhint("Options of flowstate_kafka servers and user mappings are librdkafka consumer properties.")));
}

static void
unknown_option(DefElem *def, const char *const *valid, const char *what)
{
	StringInfoData list;

	initStringInfo(&list);
	for (int i = 0; valid[i]; i++)
		appendStringInfo(&list, "%s%s", i ? ", " : "", valid[i]);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\" for %s", def->defname, what),
			 errhint("Valid options are: %s.", list.data)));
}

/*
 * flowstate_kafka_validator checks the options of the wrapper's servers,
 * user mappings, foreign tables and columns.
 */
Datum
flowstate_kafka_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	bool		brokers = false;
	bool		topic = false;
	bool		field = false;
	bool		metadata = false;
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		switch (catalog)
		{
			case ForeignDataWrapperRelationId:
				ereport(ERROR,
						(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
						 errmsg("the flowstate_kafka wrapper takes no options"),
						 errhint("Give the brokers and Kafka properties in CREATE SERVER.")));
				break;
			case ForeignServerRelationId:
				if (strcmp(def->defname, "brokers") == 0)
				{
					if (*defGetString(def) == '\0')
						ereport(ERROR,
								(errcode(ERRCODE_FDW_INVALID_ATTRIBUTE_VALUE),
								 errmsg("brokers must not be empty"),
								 errhint("Give a comma-separated list of host:port.")));
					brokers = true;
				}
				else
					check_property(def, false);
				break;
			case UserMappingRelationId:
				check_property(def, true);
				break;
			case ForeignTableRelationId:
				if (!listed(def->defname, StreamTableOptions))
					unknown_option(def, StreamTableOptions, "a Kafka stream");
				StreamCheckTableOption(def);
				topic |= strcmp(def->defname, "topic") == 0;
				break;
			case AttributeRelationId:
				if (!listed(def->defname, StreamColumnOptions))
					unknown_option(def, StreamColumnOptions, "a column of a Kafka stream");
				StreamCheckColumnOption(def);
				field |= strcmp(def->defname, "field") == 0;
				metadata |= strcmp(def->defname, "metadata") == 0;
				break;
		}
	}
	if (catalog == ForeignServerRelationId && !brokers)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a flowstate_kafka server needs brokers"),
				 errhint("Add OPTIONS (brokers 'host:port,...').")));
	if (catalog == ForeignTableRelationId && !topic)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("a Kafka stream needs a topic"),
				 errhint("Add OPTIONS (topic 'name').")));
	if (field && metadata)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("a column takes a field of the message or its metadata, not both"),
				 errhint("Drop the field or the metadata option.")));
	PG_RETURN_VOID();
}

/* ---- scans: refused ---- */

static void
get_rel_size(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	baserel->rows = 1000;
}

static void
get_paths(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	add_path(baserel, (Path *) create_foreignscan_path(root, baserel, NULL, baserel->rows,
													   10, 1000, NIL, baserel->lateral_relids,
													   NULL, NIL));
}

static ForeignScan *
get_plan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid, ForeignPath *best_path,
		 List *tlist, List *scan_clauses, Plan *outer_plan)
{
	scan_clauses = extract_actual_clauses(scan_clauses, false);
	return make_foreignscan(tlist, scan_clauses, baserel->relid, NIL, NIL, NIL, NIL, outer_plan);
}

static void
begin_scan(ForeignScanState *node, int eflags)
{
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("a Kafka stream cannot be read directly"),
			 errdetail("Foreign table \"%s\" is a Kafka topic, consumed by the continuous views over it.",
					   RelationGetRelationName(node->ss.ss_currentRelation)),
			 errhint("Read a continuous view over it (flowstate.create_view), or the topic with a Kafka client.")));
}

static TupleTableSlot *
iterate_scan(ForeignScanState *node)
{
	return ExecClearTuple(node->ss.ss_ScanTupleSlot);
}

static void
rescan(ForeignScanState *node)
{
}

static void
end_scan(ForeignScanState *node)
{
}

/*
 * flowstate_kafka_handler returns the wrapper's routines.
 */
Datum
flowstate_kafka_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = get_rel_size;
	routine->GetForeignPaths = get_paths;
	routine->GetForeignPlan = get_plan;
	routine->BeginForeignScan = begin_scan;
	routine->IterateForeignScan = iterate_scan;
	routine->ReScanForeignScan = rescan;
	routine->EndForeignScan = end_scan;
	PG_RETURN_POINTER(routine);
}
