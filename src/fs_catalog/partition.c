/*-------------------------------------------------------------------------
 *
 * partition.c
 *	  Partitioned tables as sources of continuous views.
 *
 * Wording: a *leaf* is a partition that holds rows (a table that is not
 * itself partitioned); a view's *source* may be a partitioned table, whose
 * rows are those of the leaves below it.
 *
 * Each leaf has its own row type (columns in another order, dropped
 * columns) and its own replica identity, and its changes reach the WAL, and
 * logical decoding, as changes of the leaf.  So:
 *	- every leaf below a source must log whole old rows (REPLICA IDENTITY
 *	  FULL) and be a logged table: checked when a view is created and when a
 *	  table is attached below its source; a partition created below a source
 *	  (CREATE TABLE ... PARTITION OF) gets REPLICA IDENTITY FULL (ddl.c);
 *	- the decoder maps each leaf's rows to the source's row type
 *	  (sources/decoding/decoder.c), and backfills and recomputes read the leaves the
 *	  same way (SourceScan);
 *	- rows join or leave a partitioned table without any row change in the
 *	  WAL when a table holding rows is attached, or a partition detached or
 *	  dropped.  The transaction that does it logs a transactional logical
 *	  decoding message naming the partitioned tables concerned (the parent
 *	  and its ancestors); at that point of the WAL the decoder rebuilds the
 *	  views over them from their rows (a backfill).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupconvert.h"
#include "access/xlog.h"
#include "catalog/objectaccess.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/tablecmds.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "replication/message.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "fs_catalog/catalog.h"
#include "fs_catalog/partition.h"

static object_access_hook_type prev_object_access_hook = NULL;

/* A scan of a source's rows, leaf after leaf, in the source's row type. */
struct SourceScan
{
	Snapshot	snapshot;
	TupleDesc	desc;			/* the source's row type */
	List	   *leaves;			/* relids */
	int			next;			/* the next leaf to open */
	Relation	rel;			/* the leaf being read, or NULL */
	TableScanDesc scan;
	TupleTableSlot *leaf_slot;
	TupleConversionMap *map;	/* leaf row type to the source's, or NULL */
	TupleTableSlot *out;		/* of the source's row type */
};

/*
 * PartitionLeaves lists the leaves below a partitioned table (as seen by
 * the active snapshot: a partition whose detach it sees is left out),
 * locking them in AccessShareLock.
 */
List *
PartitionLeaves(Oid relid)
{
	List	   *leaves = NIL;
	ListCell   *lc;

	foreach(lc, find_all_inheritors(relid, AccessShareLock, NULL))
	{
		Oid			child = lfirst_oid(lc);

		if (get_rel_relkind(child) != RELKIND_PARTITIONED_TABLE)
			leaves = lappend_oid(leaves, child);
	}
	return leaves;
}

/*
 * PartitionTree returns a table and, if it is a partition, the partitioned
 * tables above it, nearest first.
 */
List *
PartitionTree(Oid relid)
{
	if (!get_rel_relispartition(relid))
		return list_make1_oid(relid);
	return lcons_oid(relid, get_partition_ancestors(relid));
}

/*
 * PartitionCheckLeaves refuses a table, or a partitioned table, whose rows
 * the decoding of source's views could not follow: a leaf that is foreign
 * or unlogged, or does not log whole old rows.
 */
void
PartitionCheckLeaves(Oid relid, Oid source)
{
	List	   *leaves;
	ListCell   *lc;
	char	   *source_name = get_rel_name(source);

	if (get_rel_relkind(relid) == RELKIND_PARTITIONED_TABLE)
		leaves = PartitionLeaves(relid);
	else
		leaves = list_make1_oid(relid);
	foreach(lc, leaves)
	{
		Oid			leaf = lfirst_oid(lc);
		Relation	rel = relation_open(leaf, AccessShareLock);
		char		relkind = rel->rd_rel->relkind;
		char		persistence = rel->rd_rel->relpersistence;
		char		ident = rel->rd_rel->relreplident;
		char	   *name = pstrdup(RelationGetRelationName(rel));
		char	   *qualified = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
														   name);

		relation_close(rel, AccessShareLock);
		if (relkind != RELKIND_RELATION)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("partition \"%s\" of the source of a continuous view must be an ordinary table",
							name),
					 errdetail("Continuous views over \"%s\" follow its rows through the WAL of its partitions.",
							   source_name),
					 errhint("Keep foreign tables out of partitioned tables that continuous views read.")));
		if (persistence != RELPERSISTENCE_PERMANENT)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("unlogged partition \"%s\" cannot feed a continuous view", name),
					 errdetail("Changes to unlogged tables are not written to the WAL."),
					 errhint("Run ALTER TABLE %s SET LOGGED.", qualified)));
		if (ident != REPLICA_IDENTITY_FULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("partition \"%s\" must have REPLICA IDENTITY FULL to feed a continuous view",
							name),
					 errdetail("A continuous view over \"%s\" reads the old version of the rows updated and deleted in each of its partitions from the WAL.",
							   source_name),
					 errhint("Run ALTER TABLE %s REPLICA IDENTITY FULL.", qualified)));
	}
}

/*
 * PartitionNoteChange logs, in the current transaction, that the rows of a
 * partitioned table and of the tables above it changed without row changes
 * in the WAL (a partition attached, detached or dropped): the decoder
 * rebuilds their views when it reaches the commit.
 */
void
PartitionNoteChange(Oid parent)
{
	List	   *tree;
	Oid		   *oids;
	int			n = 0;
	ListCell   *lc;

	if (!XLogLogicalInfoActive() || !CatalogExtensionPresent())
		return;
	tree = PartitionTree(parent);
	oids = palloc(sizeof(Oid) * list_length(tree));
	foreach(lc, tree)
		oids[n++] = lfirst_oid(lc);
	(void) LogLogicalMessage(PARTITION_MESSAGE_PREFIX, (char *) oids, sizeof(Oid) * n, true);
	pfree(oids);
}

/*
 * PartitionSetReplicaIdentityFull gives a new partition of a source the
 * replica identity its views need.
 */
void
PartitionSetReplicaIdentityFull(Oid relid)
{
	ReplicaIdentityStmt *ident = makeNode(ReplicaIdentityStmt);
	AlterTableCmd *cmd = makeNode(AlterTableCmd);

	ident->identity_type = REPLICA_IDENTITY_FULL;
	cmd->subtype = AT_ReplicaIdentity;
	cmd->def = (Node *) ident;
	AlterTableInternal(relid, list_make1(cmd), false);
}

/* A partition dropped (DROP TABLE, or with its schema): its rows leave. */
static void
partition_object_access(ObjectAccessType access, Oid classId, Oid objectId,
						int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access != OAT_DROP || classId != RelationRelationId || subId != 0)
		return;
	if (!get_rel_relispartition(objectId) ||
		get_rel_persistence(objectId) == RELPERSISTENCE_TEMP)
		return;
	switch (get_rel_relkind(objectId))
	{
		case RELKIND_RELATION:
		case RELKIND_PARTITIONED_TABLE:
		case RELKIND_FOREIGN_TABLE:
			PartitionNoteChange(get_partition_parent(objectId, true));
			break;
		default:
			break;
	}
}

/*
 * PartitionInit installs the hook that notices dropped partitions.
 */
void
PartitionInit(void)
{
	prev_object_access_hook = object_access_hook;
	object_access_hook = partition_object_access;
}

/*
 * SourceScanBegin starts reading the rows of a source, a table or a
 * partitioned table, visible to a snapshot.  SourceScanNext returns them
 * one by one, in a slot of the source's row type valid until the next call
 * (NULL at the end).  Partitions whose detach the snapshot sees are not
 * read.
 */
SourceScan *
SourceScanBegin(Relation rel, Snapshot snapshot)
{
	SourceScan *s = palloc0(sizeof(SourceScan));

	s->snapshot = snapshot;
	s->desc = RelationGetDescr(rel);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		PushActiveSnapshot(snapshot);
		s->leaves = PartitionLeaves(RelationGetRelid(rel));
		PopActiveSnapshot();
		s->out = MakeSingleTupleTableSlot(s->desc, &TTSOpsVirtual);
	}
	else
		s->leaves = list_make1_oid(RelationGetRelid(rel));
	return s;
}

static void
end_leaf(SourceScan *s)
{
	table_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->leaf_slot);
	if (s->map)
		free_conversion_map(s->map);
	table_close(s->rel, AccessShareLock);
	s->scan = NULL;
	s->rel = NULL;
	s->map = NULL;
}

TupleTableSlot *
SourceScanNext(SourceScan *s)
{
	for (;;)
	{
		if (s->rel == NULL)
		{
			Relation	rel;

			if (s->next >= list_length(s->leaves))
				return NULL;
			rel = try_table_open(list_nth_oid(s->leaves, s->next++), AccessShareLock);
			if (rel == NULL)
				continue;		/* dropped meanwhile */
			if (rel->rd_tableam == NULL)
			{
				table_close(rel, AccessShareLock);
				continue;
			}
			s->rel = rel;
			s->leaf_slot = table_slot_create(rel, NULL);
			/*
			 * A map also for a table read as itself when columns were added
			 * with a default since some of its rows were written: they lack
			 * them, and the map fills them in.
			 */
			s->map = convert_tuples_by_name(RelationGetDescr(rel), s->desc);
			if (s->map != NULL && s->out == NULL)
				s->out = MakeSingleTupleTableSlot(s->desc, &TTSOpsVirtual);
			s->scan = table_beginscan(rel, s->snapshot, 0, NULL);
		}
		if (table_scan_getnextslot(s->scan, ForwardScanDirection, s->leaf_slot))
		{
			if (s->map == NULL)
				return s->leaf_slot;
			return execute_attr_map_slot(s->map->attrMap, s->leaf_slot, s->out);
		}
		end_leaf(s);
	}
}

void
SourceScanEnd(SourceScan *s)
{
	if (s->rel != NULL)
		end_leaf(s);
	if (s->out != NULL)
		ExecDropSingleTupleTableSlot(s->out);
	list_free(s->leaves);
	pfree(s);
}
