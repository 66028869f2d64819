/*-------------------------------------------------------------------------
 *
 * consumer.c
 *	  The Kafka worker: consumes a stream's partitions with librdkafka and
 *	  feeds the continuous views and histories over the stream.  With
 *	  partitions.c (where it starts in each partition, the lag), the only
 *	  files that include librdkafka.
 *
 * A stream (a foreign table of flowstate_kafka, stream.c) with views gets
 * as many workers as its "workers" option says; worker i of n consumes
 * the partitions p with p % n == i, assigned to it directly (no consumer
 * group protocol, no rebalancing).  Offsets are flowstate's: each view
 * keeps, per partition, the next offset its state includes, in shared
 * memory with its groups and in flowstate.stream_offsets with its state
 * table, written in the same transaction (flush.c).  A view's first
 * offsets are the partitions' beginnings or ends (the stream's "start"
 * option), resolved when it first meets them.
 *
 * Worker 0 also keeps the stream's histories (engine/history_stream.c),
 * which carry their own offsets likewise (flowstate.history_offsets): a
 * stream with histories has that one worker.
 *
 * It is a source of the worker loop (workers/source_worker.c), which reads
 * the catalog, flushes (worker 0), keeps memory and reports.  Each batch:
 *	- consume a batch of messages (the batch API; no more than the memory
 *	  policy allows new groups), decode each (stream.c) and apply it to
 *	  each view whose offset it has not passed yet;
 *	- write the batch's dead letters and late events, in a transaction of
 *	  their own (or, for the owner, in that of the flush under way),
 *	  idempotently (flush.c): a message consumed again after a crash is not
 *	  recorded twice;
 *	- merge each view's batch into shared memory with its offsets
 *	  (IngestApplyShared: several workers may write a view); a batch that
 *	  shared memory refuses is kept whole, and nothing more is consumed
 *	  until it went in (backpressure, workers/backpressure.c);
 *	- worker 0, the owner of the views, registers them in shared memory and
 *	  loads their state; the loop has it flush them (in slices between
 *	  batches) and evict their groups beyond their memory, and it commits
 *	  their durable offsets back to Kafka (for monitoring only: the group
 *	  of the stream's group_id option);
 *	- when no message came, the partitions' ends are asked for: the lag,
 *	  and the moment everything was applied (flowstate.wait_for).
 * Brokers out of reach make the worker wait, reconnecting (librdkafka
 * retries with backoff); flowstate.sources shows the state and the error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <malloc.h>
#include <librdkafka/rdkafka.h>

#include "access/xact.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "guc.h"
#include "engine/flush.h"
#include "engine/history.h"
#include "engine/ingest.h"
#include "fs_catalog/catalog.h"
#include "fs_catalog/security.h"
#include "state/state_store.h"
#include "workers/registry.h"
#include "workers/source.h"
#include "sources/kafka/consumer.h"
#include "sources/kafka/consumer_internal.h"
#include "sources/kafka/stream.h"

/* Messages handled per batch, and how long a batch waits for them. */
#define KAFKA_BATCH			10000
#define KAFKA_WAIT_MS		20

/* The Kafka worker of this process. */
KafkaConsumer *MyConsumer = NULL;

/* What librdkafka reported from its own threads, served in ours. */
static char kafka_error[FLOWSTATE_TEXT_LEN];
static bool kafka_error_new = false;

/*
 * KafkaCheckProperty returns NULL if librdkafka takes name = value for a
 * consumer, else its reason.
 */
char *
KafkaCheckProperty(const char *name, const char *value)
{
	char		errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_res_t res = rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr));

	rd_kafka_conf_destroy(conf);
	return res == RD_KAFKA_CONF_OK ? NULL : pstrdup(errstr);
}

/* Error events: run by rd_kafka_poll, in this process's thread. */
static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	snprintf(kafka_error, sizeof(kafka_error), "%s: %s",
			 rd_kafka_err2name((rd_kafka_resp_err_t) err), reason);
	kafka_error_new = true;
}

/* librdkafka's log lines, forwarded to the main queue and logged here. */
static void
on_log(const rd_kafka_t *rk, int level, const char *facility, const char *buf)
{
	ereport(level <= 3 ? WARNING : LOG,
			(errmsg("flowstate kafka %s: %s", facility, buf)));
}

/* Note an outage (or its end) for flowstate.sources. */
void
KafkaSetDegraded(const char *error)
{
	if (error != NULL)
	{
		if (!MyConsumer->worker->progress.degraded || strcmp(MyConsumer->slot->last_error, error) != 0)
			SlotSetError(error);
		MyConsumer->worker->progress.degraded = true;
	}
	else
		MyConsumer->worker->progress.degraded = false;
}

bool
KafkaMine(int32 partition)
{
	return partition % MyConsumer->stream->workers == MyConsumer->index;
}

/* ---- the consumer ---- */

static void
consumer_close(void)
{
	if (MyConsumer->rk == NULL)
		return;
	KafkaWakerStop();
	if (MyConsumer->queue)
		rd_kafka_queue_destroy(MyConsumer->queue);
	rd_kafka_consumer_close(MyConsumer->rk);
	rd_kafka_destroy(MyConsumer->rk);
	MyConsumer->rk = NULL;
	MyConsumer->queue = NULL;
	MyConsumer->assigned = false;
	MyConsumer->npartitions = 0;
}

static void
conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char		errstr[512];

	if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid Kafka property \"%s\" of stream %s: %s", name,
						MyConsumer->stream->name, errstr),
				 errhint("Fix the options of its server or user mapping.")));
	}
}

static bool
has_property(const char *name)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->stream->properties)
		if (strcmp(((DefElem *) lfirst(lc))->defname, name) == 0)
			return true;
	return false;
}

static void
consumer_open(void)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char		errstr[512];
	char		prefetch[32];
	size_t		size = sizeof(prefetch);
	ListCell   *lc;

	foreach(lc, MyConsumer->stream->properties)
	{
		DefElem    *opt = lfirst(lc);

		conf_set(conf, opt->defname, strVal(opt->arg));
	}
	conf_set(conf, "group.id", MyConsumer->stream->group_id);
	conf_set(conf, "enable.auto.commit", "false");
	conf_set(conf, "enable.auto.offset.store", "false");
	conf_set(conf, "enable.partition.eof", "false");
	/* offsets past what the topic keeps (expired): go on from its beginning */
	conf_set(conf, "auto.offset.reset", "earliest");
	conf_set(conf, "log.queue", "true");
	/* idle fetches come back soon: the partitions' ends stay fresh */
	if (!has_property("fetch.wait.max.ms"))
		conf_set(conf, "fetch.wait.max.ms", "100");
	/*
	 * The prefetch: librdkafka fetches while its queue (the consumer's
	 * one queue, all partitions together) holds fewer messages than this,
	 * librdkafka's default (queued.max.messages.kbytes bounds its bytes).
	 * Fetches start while the worker still has that many messages to go:
	 * with a prefetch of 20,000 the worker, which consumes some 1.3 million
	 * messages per second, emptied the queue before the fetches it woke
	 * came back, and waited a fifth of the time (bench/README.md, "Kafka").
	 */
	if (!has_property("queued.min.messages"))
		conf_set(conf, "queued.min.messages", "100000");
	/*
	 * Fetch responses of up to 1 MB (librdkafka's default is 50): each
	 * comes sooner, its messages are still in the caches when the worker
	 * reads them, and the broker threads' memory stays small.  On
	 * bench/kafka.sh's messages, responses of 4 MB already halved the
	 * broker threads' CPU time per message against 50 MB, and 1 MB with the
	 * prefetch above did best (bench/README.md, "Kafka").  A consumer far
	 * from its brokers (a long round trip) fetches more per trip with a
	 * larger fetch.max.bytes.  Not when the message or response size
	 * limits are set.
	 */
	if (!has_property("fetch.max.bytes") && !has_property("message.max.bytes") &&
		!has_property("receive.message.max.bytes"))
		conf_set(conf, "fetch.max.bytes", "1048576");
	/* under it, the broker threads are woken while messages are left (waker.c) */
	if (rd_kafka_conf_get(conf, "queued.min.messages", prefetch, &size) != RD_KAFKA_CONF_OK ||
		(MyConsumer->prefetch = strtol(prefetch, NULL, 10)) <= 0)
		MyConsumer->prefetch = 100000;	/* librdkafka's default */
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);

	MyConsumer->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (MyConsumer->rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not create a Kafka consumer for stream %s: %s",
						MyConsumer->stream->name, errstr)));
	}
	rd_kafka_set_log_queue(MyConsumer->rk, NULL);
	MyConsumer->queue = rd_kafka_queue_get_consumer(MyConsumer->rk);
	MyConsumer->assigned = false;
}


/* ---- views ---- */

void
KafkaViewGrow(KafkaView *kv, int n)
{
	MemoryContext oldcxt;

	if (n <= kv->nnext)
		return;
	oldcxt = MemoryContextSwitchTo(MyConsumer->views_cxt);
	kv->next = kv->next ? repalloc(kv->next, sizeof(int64) * n) : palloc(sizeof(int64) * n);
	for (int p = kv->nnext; p < n; p++)
		kv->next[p] = -1;
	kv->nnext = n;
	MemoryContextSwitchTo(oldcxt);
}

/* The owner registers a view in shared memory and loads it; in a transaction. */
static void
own_view(KafkaView *kv)
{
	ViewRuntime *vr = kv->vr;
	SharedView *sv;
	int64	   *offsets;
	int64	   *max_ts;
	int			n;

	sv = StoreRegisterView(kv->key, vr->def->view_id, vr->def->view_relid, vr->def->def_relid,
						   &vr->def->layout,
						   CatalogMemoryLimit(vr->def), true);
	vr->shared = sv;
	/* a stream's from the start: a decoder that starts leaves it alone */
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	sv->stream = true;
	sv->stream_workers = MyConsumer->stream->workers;
	LWLockRelease(&sv->lock);
	IngestLoadState(vr);
	n = FlushReadOffsets(vr->def->view_id, &offsets, &max_ts);

	/* each partition gets a whole idle_timeout before it counts as idle */
	LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
	StoreSetOffsets(sv, offsets, max_ts, n, GetCurrentTimestamp());
	sv->status = VIEW_RUNNING;
	LWLockRelease(&sv->lock);
}

/*
 * Find a view in shared memory, ready; for other than the owner, holding
 * its partition lock (release with release_view).  NULL if not ready.
 */
SharedView *
KafkaFindView(KafkaView *kv)
{
	SharedView *sv;

	if (MyConsumer->owner)
		return kv->vr->shared;
	sv = StoreFindView(kv->key);
	if (sv == NULL)
		return NULL;
	if (sv->status != VIEW_RUNNING && sv->status != VIEW_FULL)
	{
		StoreReleaseView(sv);
		return NULL;
	}
	return sv;
}

void
KafkaReleaseView(SharedView *sv)
{
	if (!MyConsumer->owner && sv != NULL)
		StoreReleaseView(sv);
}


/* ---- catalog ---- */

static void
drop_views(void)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);

		if (MyConsumer->owner && kv->vr->shared)
			StoreUnregisterView(kv->vr->shared);
		IngestViewDestroy(kv->vr);
	}
	MyConsumer->views = NIL;
	MyConsumer->worker->views = NIL;
	MyConsumer->worker->histories = NIL;	/* the list; read_catalog keeps the histories */
	MyConsumer->unmerged = false;
	MyConsumer->worker->merge_refused = false;
	/* the slot of decoded messages lives there too */
	if (MyConsumer->row)
		ExecDropSingleTupleTableSlot(MyConsumer->row);
	MyConsumer->row = NULL;
	MemoryContextReset(MyConsumer->views_cxt);
	MyConsumer->stream = NULL;
	MyConsumer->signature = NULL;
}

/* What the consumer depends on: the stream's options, its views and histories. */
static char *
signature(StreamDef *stream, List *defs, const char *histories)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%s|%d|%d|%c|%d|%s|%u|", stream->topic, stream->format,
					 stream->start_latest, stream->delimiter, stream->workers, stream->group_id,
					 stream->owner);
	foreach(lc, stream->properties)
	{
		DefElem    *opt = lfirst(lc);

		appendStringInfo(&buf, "%s=%s|", opt->defname, strVal(opt->arg));
	}
	for (int i = 0; i < stream->ncolumns; i++)
		appendStringInfo(&buf, "%s:%u:%d:%s:%d|", stream->columns[i].name, stream->columns[i].type,
						 stream->columns[i].source, stream->columns[i].field ? stream->columns[i].field : "",
						 stream->columns[i].position);
	foreach(lc, defs)
		appendStringInfo(&buf, "v%d:%u|", ((ViewDef *) lfirst(lc))->view_id,
						 ((ViewDef *) lfirst(lc))->owner);
	appendStringInfo(&buf, "h%s", histories ? histories : "");
	return buf.data;
}

/*
 * Read the catalog: the stream, its views and (worker 0) its histories.
 * When anything the consumer depends on changed, start over (flushing
 * first).  Returns false when the extension or the stream's views and
 * histories are gone.
 */
static bool
read_catalog(void)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "flowstate kafka catalog",
												  ALLOCSET_DEFAULT_SIZES);
	MemoryContext oldcxt;
	List	   *defs;
	StreamDef  *stream;
	char	   *sig;
	char	   *histories = NULL;
	bool		present;
	ListCell   *lc;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	present = CatalogExtensionPresent() && get_rel_relkind(MyConsumer->relid) == RELKIND_FOREIGN_TABLE;
	oldcxt = MemoryContextSwitchTo(scratch);
	defs = present ? CatalogLoadViews(scratch, SourceKnownView, MyConsumer->relid) : NIL;
	/* the histories are worker 0's */
	if (present && MyConsumer->owner)
		histories = HistorySignature(MyConsumer->relid);
	stream = defs != NIL || histories != NULL ? StreamLoad(MyConsumer->relid, scratch) : NULL;
	sig = stream ? signature(stream, defs, histories) : NULL;
	MemoryContextSwitchTo(oldcxt);

	if (sig == NULL || MyConsumer->signature == NULL || strcmp(sig, MyConsumer->signature) != 0)
	{
		List	   *kept = NIL;

		/* start over with the new definition */
		if (MyConsumer->owner && (MyConsumer->views != NIL || MyConsumer->worker->histories != NIL))
		{
			PopActiveSnapshot();
			CommitTransactionCommand();
			SourceFlushNow(MyConsumer->worker);
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
		}
		consumer_close();
		if (present && MyConsumer->owner)
			kept = HistoryReadCatalog(MyConsumer->worker->histories, scratch, MyConsumer->relid);
		drop_views();
		if (sig != NULL)
		{
			oldcxt = MemoryContextSwitchTo(MyConsumer->views_cxt);
			MyConsumer->stream = StreamLoad(MyConsumer->relid, MyConsumer->views_cxt);
			MyConsumer->signature = pstrdup(sig);
			defs = CatalogLoadViews(MyConsumer->views_cxt, SourceKnownView, MyConsumer->relid);
			/* wait_for: not caught up until the views are registered again */
			MyConsumer->worker->progress.caught_up_at = 0;
			SlotSetProgress(&MyConsumer->worker->progress);
			foreach(lc, defs)
			{
				ViewDef    *def = lfirst(lc);
				KafkaView  *kv = palloc0(sizeof(KafkaView));

				def->idle_timeout_us = MyConsumer->stream->idle_timeout_us;
				kv->vr = IngestViewCreate(def, def->cxt);
				kv->key.dboid = MyDatabaseId;
				kv->key.relid = def->state_relid;
				if (MyConsumer->owner)
					own_view(kv);
				MyConsumer->views = lappend(MyConsumer->views, kv);
				MyConsumer->worker->views = lappend(MyConsumer->worker->views, kv->vr);
			}
			/* other workers that looked before now are stale (wait_for) */
			if (MyConsumer->owner)
			{
				MyConsumer->worker->progress.views_registered_at = GetCurrentTimestamp();
				SlotSetProgress(&MyConsumer->worker->progress);
			}
			MyConsumer->worker->histories = list_copy(kept);
			foreach(lc, kept)
				if (MyConsumer->stream->workers > 1)
					HistoryFail(lfirst(lc), psprintf("stream %s is consumed by %d workers: a history needs one",
													 MyConsumer->stream->name, MyConsumer->stream->workers));
			MyConsumer->stream->no_value_rows = kept != NIL;
			MyConsumer->row = MakeSingleTupleTableSlot(MyConsumer->stream->desc, &TTSOpsVirtual);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextDelete(scratch);
	return sig != NULL;
}

/* ---- flushing (the owner) ---- */

/*
 * Report the offsets a flush made durable (the least of the views', for
 * every partition of the stream) to the consumer group, for monitoring.
 */
static void
commit_to_kafka(FlushJob *job)
{
	rd_kafka_topic_partition_list_t *list;
	int64	   *least;
	int			n = FlushOffsets(job, &least);
	int			count = 0;

	if (MyConsumer->rk == NULL || n == 0)
		return;
	list = rd_kafka_topic_partition_list_new(n);
	for (int p = 0; p < n; p++)
		if (least[p] >= 0)
		{
			rd_kafka_topic_partition_list_add(list, MyConsumer->stream->topic, p)->offset = least[p];
			count++;
		}
	if (count > 0)
		(void) rd_kafka_commit(MyConsumer->rk, list, 1);
	rd_kafka_topic_partition_list_destroy(list);
	pfree(least);
}

/* ---- consuming ---- */

/* A message no view could read, as text for flowstate.dead_letters. */
static char *
payload_text(const rd_kafka_message_t *m)
{
	if (m->payload == NULL)
		return NULL;
	if (pg_verifymbstr(m->payload, (int) m->len, true))
		return pnstrdup(m->payload, m->len);
	/* not text in the database encoding: its bytes, as bytea's hex */
	return DatumGetCString(DirectFunctionCall1(byteaout,
											   PointerGetDatum(cstring_to_text_with_len(m->payload,
																						(int) m->len))));
}

/* Apply one message to the views that have not passed its offset. */
static void
apply_message(const rd_kafka_message_t *m)
{
	StreamMessage msg;
	int32		p = m->partition;
	int64		o = m->offset;
	rd_kafka_timestamp_type_t tstype;
	char	   *error = NULL;
	char		sqlstate[6];
	bool		wanted = false;
	bool		ok;
	bool		no_value;
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);

		KafkaViewGrow(kv, p + 1);
		wanted |= o >= kv->next[p];
	}
	foreach(lc, MyConsumer->worker->histories)
		wanted |= HistoryStreamWants(lfirst(lc), p, o);
	if (!wanted)
		return;					/* consumed again: every view has it */

	msg.payload = m->payload;
	msg.len = m->len;
	msg.key = m->key;
	msg.keylen = m->key_len;
	msg.partition = p;
	msg.offset = o;
	msg.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	msg.has_timestamp = msg.timestamp_ms >= 0;
	ok = StreamDecode(MyConsumer->stream, &msg, MyConsumer->row, &error, sqlstate);

	/*
	 * The histories: a message without value deletes its key (there is one
	 * only for them); one they cannot take is a dead letter with their
	 * reason, though views take it.
	 */
	no_value = ok && m->payload == NULL;
	foreach(lc, MyConsumer->worker->histories)
	{
		HistoryRuntime *h = lfirst(lc);
		char	   *why = NULL;

		if (HistoryStreamWants(h, p, o) &&
			!HistoryStreamMessage(h, ok ? MyConsumer->row : NULL, no_value,
								  StreamMessageTime(&msg), p, o, &why) &&
			ok && error == NULL)
		{
			error = why;
			memcpy(sqlstate, "22004", 6);	/* null_value_not_allowed */
		}
	}

	if (error != NULL)
	{
		/* one dead letter for the message, whichever views it was for */
		MemoryContext oldcxt = MemoryContextSwitchTo(MyConsumer->rows_cxt);
		PendingRow *row = palloc0(sizeof(PendingRow));

		row->at_message = true;
		row->partition = p;
		row->offset = o;
		row->payload = payload_text(m);
		row->error = pstrdup(error);
		memcpy(row->sqlstate, sqlstate, 6);
		MyConsumer->stream_rows = lappend(MyConsumer->stream_rows, row);
		MemoryContextSwitchTo(oldcxt);
	}

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);
		ViewRuntime *vr = kv->vr;

		if (o < kv->next[p])
			continue;
		if (ok && !no_value)
		{
			vr->at_message = true;
			vr->msg_partition = p;
			vr->msg_offset = o;
			IngestRow(vr, MyConsumer->row, 1, InvalidXLogRecPtr);
		}
		else if (!ok)
			vr->batch_failed++;
		kv->next[p] = o + 1;
		IngestNoteOffset(vr, p, o + 1);
	}
}

/*
 * The view in shared memory, as this worker knows it; NULL when the owner
 * has registered it again (the owner restarted and loaded the durable
 * state, which lacks what this worker merged since; or the stream's views
 * changed).
 */
static SharedView *
current_view(KafkaView *kv)
{
	SharedView *sv = KafkaFindView(kv);

	if (sv != NULL && sv->generation == kv->generation)
		return sv;
	KafkaReleaseView(sv);
	return NULL;
}

/*
 * Start over from the views as the owner registered them again: consume
 * from their offsets in shared memory (what this worker applied since comes
 * again; its dead letters are not recorded twice).
 */
static void
start_over(void)
{
	ereport(LOG,
			(errmsg("flowstate kafka worker %d of stream %s starts over from its views' state",
					MyConsumer->index, MyConsumer->stream->name)));
	consumer_close();
	drop_views();
	MyConsumer->worker->progress.caught_up_at = 0;
}

/*
 * Merge each view's batch into shared memory; returns false when shared
 * memory refused one.  A refused batch changes nothing and is kept: the
 * worker reads no more until it is merged (the memory policy makes room
 * meanwhile, backpressure.c), so that nothing is lost nor read twice.
 * Views whose batch went in keep an empty batch, which merges again
 * harmlessly.
 */
static bool
merge_views(void)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);
		MemoryContext cxt = CurrentMemoryContext;
		/* an aggregate's functions in SQL need a transaction to combine states */
		bool		own_xact = kv->vr->rt->needs_xact && !IsTransactionState();
		SharedView *sv;
		bool		merged;

		if (own_xact)
			StartTransactionCommand();
		sv = current_view(kv);
		if (sv == NULL)
		{
			if (own_xact)
				CommitTransactionCommand();
			MemoryContextSwitchTo(cxt);
			start_over();
			return true;
		}
		merged = IngestApplyShared(kv->vr, sv);
		/* lateness, next batch: the event time of the last committed flush */
		IngestRefreshDurable(kv->vr, sv, MyConsumer->index, merged);
		KafkaReleaseView(sv);
		if (own_xact)
			CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		if (!merged)
		{
			MyConsumer->unmerged = MyConsumer->worker->merge_refused = true;
			return false;
		}
	}
	MyConsumer->unmerged = MyConsumer->worker->merge_refused = false;
	return true;
}

/*
 * An idle worker checks its views, as a merge does, and takes the event
 * time of their last committed flush for lateness (an idle worker must not
 * hold the watermark readers see back); returns false when it started
 * over.
 */
static bool
check_views(void)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);
		SharedView *sv = current_view(kv);

		if (sv == NULL)
		{
			if (MyConsumer->owner)
				continue;
			start_over();
			return false;
		}
		IngestRefreshDurable(kv->vr, sv, MyConsumer->index, !MyConsumer->unmerged);
		KafkaReleaseView(sv);
	}
	return true;
}


/*
 * Consume and apply one batch of at most max messages; returns the number
 * of messages.
 */
static int
consume_batch(MemoryContext batchcxt, int wait_ms, int max)
{
	rd_kafka_message_t **msgs = MemoryContextAlloc(batchcxt, sizeof(rd_kafka_message_t *) * max);
	ssize_t		n;
	int			applied = 0;
	bool		pending;
	bool		in_flush;
	ListCell   *lc;

	/*
	 * What is there, at once; else wait for messages (the batch call waits
	 * out its timeout unless the batch fills, hence the short wait).
	 */
	n = rd_kafka_consume_batch_queue(MyConsumer->queue, 0, msgs, max);
	if (n == 0 && wait_ms > 0)
		n = rd_kafka_consume_batch_queue(MyConsumer->queue, wait_ms, msgs, max);
	if (n <= 0)
		return 0;

	/*
	 * Type input functions and user functions need a transaction: the
	 * owner's flush under way has one open, else a short one of its own.
	 * Side rows written in the flush's transaction commit with it, before
	 * any flush that records the offsets of this batch.
	 */
	in_flush = IsTransactionState();
	if (!in_flush)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
	}
	/* views that join a dimension read it as of now (lookup.c) */
	LookupBegin(MyConsumer->worker->views);
	for (ssize_t i = 0; i < n; i++)
	{
		rd_kafka_message_t *m = msgs[i];

		if (m->err)
		{
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				KafkaSetDegraded(psprintf("topic \"%s\": %s", MyConsumer->stream->topic,
									  rd_kafka_message_errstr(m)));
		}
		else
		{
			MemoryContextSwitchTo(MyConsumer->msg_cxt);
			apply_message(m);
			MemoryContextSwitchTo(batchcxt);
			MemoryContextReset(MyConsumer->msg_cxt);
			applied++;
		}
		rd_kafka_message_destroy(m);
	}
	LookupEnd(MyConsumer->worker->views);
	if (applied > 0)
		KafkaSetDegraded(NULL);

	/* side rows first: durable before the offsets that pass them */
	pending = MyConsumer->stream_rows != NIL;
	foreach(lc, MyConsumer->views)
		pending |= ((KafkaView *) lfirst(lc))->vr->pending != NIL;
	if (pending)
	{
		PushActiveSnapshot(GetTransactionSnapshot());
		FlushWritePending(MyConsumer->worker->views, MyConsumer->relid, MyConsumer->stream_rows);
		PopActiveSnapshot();
		MyConsumer->stream_rows = NIL;
		MemoryContextReset(MyConsumer->rows_cxt);
	}
	if (!in_flush)
		CommitTransactionCommand();
	MemoryContextSwitchTo(batchcxt);

	(void) merge_views();
	MyConsumer->worker->progress.changes += applied;
	return (int) n;
}

static void
serve_events(void)
{
	rd_kafka_poll(MyConsumer->rk, 0);
	if (kafka_error_new)
	{
		kafka_error_new = false;
		KafkaSetDegraded(kafka_error);
	}
}

/* ---- the source of the worker loop ---- */

/* Connect, and assign the partitions at start and when they grow. */
static bool
kafka_prepare(SourceWorker *w)
{
	bool		ready;

	if (MyConsumer->stream == NULL)
		return false;			/* started over: the catalog first */
	if (MyConsumer->rk == NULL)
		consumer_open();
	serve_events();

	/* the topic's partitions, at start and now and then (they can grow) */
	ready = MyConsumer->assigned;
	if (!ready || TimestampDifferenceExceeds(MyConsumer->metadata_at, GetCurrentTimestamp(),
											 Max(flowstate_naptime, 10000)))
	{
		int			partitions = KafkaTopicPartitions();

		if (!MyConsumer->assigned || (partitions > MyConsumer->npartitions))
		{
			if (MyConsumer->owner && MyConsumer->assigned)
				SourceFlushNow(w);
			ready = KafkaAssign();
		}
		MyConsumer->metadata_at = GetCurrentTimestamp();
	}
	return ready;
}

/*
 * Consume a batch (after the one shared memory refused, if any, went in),
 * and measure the lag when idle.  The batch call waits for messages
 * itself: the loop goes on at once, unless a refused batch waits.
 */
static bool
kafka_read_batch(SourceWorker *w)
{
	int			n;
	bool		fresh;
	TimestampTz checked_at;

	if (MyConsumer->unmerged && !merge_views())
		return false;
	if (MyConsumer->stream == NULL)
	{
		/* started over */
		w->catalog_stale = true;
		return true;
	}

	n = consume_batch(w->loop_cxt, w->flush_job != NULL ? 0 : KAFKA_WAIT_MS,
					  (int) Min(KAFKA_BATCH, w->batch_groups));
	if (MyConsumer->stream == NULL)
	{
		w->catalog_stale = true;
		return true;
	}

	/* idle: ask the brokers if someone waits, else now and then */
	fresh = n == 0 &&
		(MyConsumer->slot->catch_up_asked_at >= w->progress.caught_up_at ||
		 TimestampDifferenceExceeds(MyConsumer->lag_asked_at, GetCurrentTimestamp(), 1000));
	if (fresh)
		MyConsumer->lag_asked_at = GetCurrentTimestamp();
	checked_at = GetCurrentTimestamp();
	if (n == 0 && !check_views())
	{
		w->catalog_stale = true;
		return true;
	}
	KafkaMeasureLag(fresh, checked_at);
	return true;
}

/* Held back for memory: librdkafka's events are still served. */
static void
kafka_paused(SourceWorker *w)
{
	if (MyConsumer->rk != NULL)
		serve_events();
}

/* The views carry their offsets: a flush may always start. */
static bool
kafka_flush_position(SourceWorker *w, XLogRecPtr *position)
{
	*position = InvalidXLogRecPtr;
	return true;
}

/* A flush committed: its offsets go to the consumer group, for monitoring. */
static void
kafka_flushed(SourceWorker *w, FlushJob *job, XLogRecPtr position)
{
	if (job != NULL)
		commit_to_kafka(job);
}

static void
kafka_describe(SourceWorker *w, char *buf, size_t len)
{
	if (w->histories != NIL)
		snprintf(buf, len, "consuming %d partitions of topic \"%s\" for %d views and %d histories",
				 w->progress.partitions, MyConsumer->stream ? MyConsumer->stream->topic : "?",
				 list_length(MyConsumer->views), list_length(w->histories));
	else
		snprintf(buf, len, "consuming %d partitions of topic \"%s\" for %d views",
				 w->progress.partitions, MyConsumer->stream ? MyConsumer->stream->topic : "?",
				 list_length(MyConsumer->views));
}

static bool
kafka_read_catalog(SourceWorker *w)
{
	return read_catalog();
}

static void
kafka_open(SourceWorker *w)
{
	MyConsumer->worker = w;
	MyConsumer->slot = w->slot;
	MyConsumer->relid = w->slot->relid;
	MyConsumer->index = w->slot->index;
	MyConsumer->owner = MyConsumer->index == 0;
	/* worker 0 registers, loads, flushes and evicts the views */
	w->flushes = MyConsumer->owner;
	MyConsumer->views_cxt = AllocSetContextCreate(w->worker_cxt, "flowstate kafka views",
												  ALLOCSET_DEFAULT_SIZES);
	MyConsumer->rows_cxt = AllocSetContextCreate(w->worker_cxt, "flowstate kafka dead letters",
												 ALLOCSET_DEFAULT_SIZES);
	MyConsumer->msg_cxt = AllocSetContextCreate(w->worker_cxt, "flowstate kafka message",
												ALLOCSET_DEFAULT_SIZES);
	pgstat_report_appname("flowstate kafka");
}

static void
kafka_close(SourceWorker *w, WorkerExit how)
{
	consumer_close();
}

static const SourceCallbacks kafka_source = {
	.verb = "consuming",
	.idle_ms = KAFKA_WAIT_MS * 5,
	.open = kafka_open,
	.read_catalog = kafka_read_catalog,
	.prepare = kafka_prepare,
	.read_batch = kafka_read_batch,
	.paused = kafka_paused,
	.flush_position = kafka_flush_position,
	.flushed = kafka_flushed,
	.describe = kafka_describe,
	.close = kafka_close,
};

/*
 * flowstate_kafka_main is the entry point of a Kafka worker.  Its argument is the
 * slot number; bgw_extra holds the slot's generation.
 */
void
flowstate_kafka_main(Datum main_arg)
{
#if defined(M_MMAP_THRESHOLD) && defined(M_TRIM_THRESHOLD)

	/*
	 * librdkafka's broker threads read each fetch response (about a
	 * megabyte) into memory of their own malloc arenas, and glibc gives an
	 * arena's free top back to the kernel at once: the next response then
	 * faulted its pages in anew, a fifth of the worker's CPU in a profile.
	 * This process keeps up to 64 MB of freed memory, and takes blocks up
	 * to 32 MB from the arenas rather than from mmap.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
#endif
	MyConsumer = MemoryContextAllocZero(TopMemoryContext, sizeof(KafkaConsumer));
	SourceWorkerRun(main_arg, &kafka_source, MyConsumer);
}
