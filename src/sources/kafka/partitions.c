/*-------------------------------------------------------------------------
 *
 * partitions.c
 *	  The partitions of a Kafka worker's topic: how many there are, where
 *	  this worker starts in each (the least advanced of its views and
 *	  histories, or the stream's beginning or end for those that start),
 *	  and how far behind their ends it is (the lag, and the moment it has
 *	  applied everything: flowstate.wait_for).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <librdkafka/rdkafka.h>

#include "engine/history.h"
#include "sources/kafka/consumer_internal.h"

/* How long a question to the brokers may take. */
#define KAFKA_QUERY_MS		2000
/* The shortest time between two wake-ups of the broker threads. */
#define KAFKA_WAKE_MS		10

/* The topic's partition count, or -1 when the brokers do not tell. */
int
KafkaTopicPartitions(void)
{
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *topic = rd_kafka_topic_new(MyConsumer->rk, MyConsumer->stream->topic, NULL);
	rd_kafka_resp_err_t err;
	int			n = -1;

	err = rd_kafka_metadata(MyConsumer->rk, 0, topic, &md, KAFKA_QUERY_MS);
	rd_kafka_topic_destroy(topic);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		KafkaSetDegraded(psprintf("could not read the metadata of topic \"%s\": %s",
							  MyConsumer->stream->topic, rd_kafka_err2str(err)));
		return -1;
	}
	if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
		n = md->topics[0].partition_cnt;
	else if (md->topic_cnt == 1)
		KafkaSetDegraded(psprintf("topic \"%s\": %s", MyConsumer->stream->topic,
							  rd_kafka_err2str(md->topics[0].err)));
	rd_kafka_metadata_destroy(md);
	return n;
}

/*
 * Where this worker starts in each of its partitions: each view's next
 * offset from shared memory (the owner loaded them), or the stream's start
 * position.  Returns false if a view is not ready yet.
 */
static bool
KafkaViewsReady(void)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);
		SharedView *sv = KafkaFindView(kv);
		int64	   *offsets;
		int			n;

		if (sv == NULL)
			return false;
		LWLockAcquire(&sv->lock, LW_SHARED);
		kv->generation = sv->generation;
		n = StoreGetOffsets(sv, &offsets);
		LWLockRelease(&sv->lock);
		KafkaReleaseView(sv);
		KafkaViewGrow(kv, Max(n, MyConsumer->npartitions));
		for (int p = 0; p < kv->nnext; p++)
			kv->next[p] = p < n ? offsets[p] : -1;
	}
	return true;
}

/*
 * Ask the brokers for the beginnings (latest false) or ends of this
 * worker's partitions, all at once: ends[p] for p < npartitions, -1 for
 * partitions of other workers.  Returns false if the brokers do not tell.
 */
static bool
KafkaPartitionEnds(bool latest, int64 *ends)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(Max(MyConsumer->npartitions, 1));
	rd_kafka_resp_err_t err;
	bool		ok = true;

	for (int p = 0; p < MyConsumer->npartitions; p++)
	{
		ends[p] = -1;
		if (KafkaMine(p))
			rd_kafka_topic_partition_list_add(list, MyConsumer->stream->topic, p)->offset =
				latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
	}
	if (list->cnt == 0)
	{
		rd_kafka_topic_partition_list_destroy(list);
		return true;
	}
	err = rd_kafka_offsets_for_times(MyConsumer->rk, list, KAFKA_QUERY_MS);
	for (int i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
	{
		if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			err = list->elems[i].err;
		else
			ends[list->elems[i].partition] = list->elems[i].offset;
	}
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		KafkaSetDegraded(psprintf("could not read the offsets of topic \"%s\": %s",
							  MyConsumer->stream->topic, rd_kafka_err2str(err)));
		ok = false;
	}
	rd_kafka_topic_partition_list_destroy(list);
	return ok;
}

/*
 * Make each view's partitions in shared memory as many as the topic's,
 * n: a partition no worker consumed yet holds the watermark back (for its
 * idle_timeout, if the stream has one) until its first messages came.
 */
static void
KafkaNotePartitions(int n)
{
	ListCell   *lc;

	foreach(lc, MyConsumer->views)
	{
		SharedView *sv = KafkaFindView(lfirst(lc));

		if (sv == NULL)
			continue;
		LWLockAcquire(&sv->lock, LW_EXCLUSIVE);
		StoreNotePartitions(sv, n, GetCurrentTimestamp());
		LWLockRelease(&sv->lock);
		KafkaReleaseView(sv);
	}
}

/* Assign this worker's partitions, each from the least advanced view. */
bool
KafkaAssign(void)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t err;
	int			n = KafkaTopicPartitions();
	int			count = 0;
	bool		starts_needed = false;
	int64	   *starts;
	ListCell   *lc;

	if (n < 0)
		return false;
	MyConsumer->npartitions = n;
	if (!KafkaViewsReady())
		return false;
	KafkaNotePartitions(n);
	starts = palloc(sizeof(int64) * Max(n, 1));

	/* views and histories that start in a partition start at its beginning or end */
	foreach(lc, MyConsumer->views)
	{
		KafkaView  *kv = lfirst(lc);

		for (int p = 0; p < n; p++)
			if (KafkaMine(p) && kv->next[p] < 0)
				starts_needed = true;
	}
	foreach(lc, MyConsumer->worker->histories)
		for (int p = 0; p < n; p++)
			if (KafkaMine(p) && HistoryStreamStart(lfirst(lc), p, -1) < 0)
				starts_needed = true;
	if (starts_needed && !KafkaPartitionEnds(MyConsumer->stream->start_latest, starts))
		return false;

	list = rd_kafka_topic_partition_list_new(Max(n, 1));
	for (int p = 0; p < n; p++)
	{
		int64		from = -1;

		if (!KafkaMine(p))
			continue;
		foreach(lc, MyConsumer->views)
		{
			KafkaView  *kv = lfirst(lc);

			if (kv->next[p] < 0)
			{
				/* the view starts there: it is its offset from now on */
				kv->next[p] = starts[p];
				IngestNoteOffset(kv->vr, p, kv->next[p]);
			}
			from = from < 0 ? kv->next[p] : Min(from, kv->next[p]);
		}
		foreach(lc, MyConsumer->worker->histories)
		{
			int64		next = HistoryStreamStart(lfirst(lc), p, starts_needed ? starts[p] : -1);

			from = from < 0 ? next : Min(from, next);
		}
		rd_kafka_topic_partition_list_add(list, MyConsumer->stream->topic, p)->offset = from;
		count++;
	}
	err = rd_kafka_assign(MyConsumer->rk, list);
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		KafkaWakerStart(MyConsumer->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
	{
		KafkaSetDegraded(psprintf("could not assign the partitions of topic \"%s\": %s",
							  MyConsumer->stream->topic, rd_kafka_err2str(err)));
		return false;
	}
	MyConsumer->assigned = true;
	MyConsumer->metadata_at = GetCurrentTimestamp();
	MyConsumer->worker->progress.partitions = count;
	return true;
}

/* The messages of this worker's partitions after what its views applied, by ends. */
static int64
lag_behind(const int64 *ends)
{
	int64		lag = 0;

	for (int p = 0; p < MyConsumer->npartitions; p++)
	{
		int64		least = -1;
		ListCell   *lc;

		if (!KafkaMine(p) || ends[p] < 0)
			continue;
		foreach(lc, MyConsumer->views)
		{
			KafkaView  *kv = lfirst(lc);
			int64		next = p < kv->nnext ? kv->next[p] : -1;

			least = least < 0 ? next : Min(least, next);
		}
		foreach(lc, MyConsumer->worker->histories)
		{
			int64		next = HistoryStreamStart(lfirst(lc), p, -1);

			least = least < 0 ? next : Min(least, next);
		}
		if (least >= 0 && ends[p] > least)
			lag += ends[p] - least;
	}
	return lag;
}

/*
 * The lag of this worker's partitions, from the ends the consumer last
 * heard of (each fetch response brings them), or (fresh: a wait_for
 * waits, or now and then while idle) from asking the brokers, as of
 * checked_at: when the views were last found current.  Only the brokers
 * can tell that everything was applied, and only once the ends heard of
 * are known and show nothing left: while those show messages not applied,
 * theirs (later) do too, and their answer would wait behind the fetches
 * in flight.  While there are messages left and the prefetch queue runs
 * low, the broker threads are woken (waker.c).
 */
void
KafkaMeasureLag(bool fresh, TimestampTz checked_at)
{
	int64	   *ends = palloc(sizeof(int64) * Max(MyConsumer->npartitions, 1));
	int64		lag;
	bool		known = true;

	for (int p = 0; p < MyConsumer->npartitions; p++)
	{
		int64		low;

		ends[p] = -1;
		if (KafkaMine(p) &&
			(rd_kafka_get_watermark_offsets(MyConsumer->rk, MyConsumer->stream->topic, p, &low, &ends[p]) !=
			 RD_KAFKA_RESP_ERR_NO_ERROR || ends[p] < 0))
			known = false;
	}
	lag = lag_behind(ends);
	if (lag > 0 && !MyConsumer->worker->progress.degraded &&
		rd_kafka_queue_length(MyConsumer->queue) < (size_t) MyConsumer->prefetch &&
		TimestampDifferenceExceeds(MyConsumer->woken_at, checked_at, KAFKA_WAKE_MS))
	{
		KafkaWakerPoke();
		MyConsumer->woken_at = checked_at;
	}
	fresh = fresh && known && lag == 0;
	if (fresh)
	{
		known = KafkaPartitionEnds(true, ends);
		lag = lag_behind(ends);
	}
	MyConsumer->worker->progress.lag_messages = lag;
	if (fresh && known)
	{
		KafkaSetDegraded(NULL);
		/*
		 * Caught up once the histories have written what they read (a
		 * flush under way has not yet): at once for a wait_for, else at
		 * the next flush
		 */
		if (lag == 0 && MyConsumer->owner &&
			(HistoryStreamUnflushed(MyConsumer->worker->histories) ||
			 (MyConsumer->worker->histories != NIL && MyConsumer->worker->flush_job != NULL)))
		{
			if (MyConsumer->slot->catch_up_asked_at < MyConsumer->worker->progress.caught_up_at)
				lag = -1;
			else
				SourceFlushNow(MyConsumer->worker);
		}
		if (lag == 0)
			MyConsumer->worker->progress.caught_up_at = checked_at;
	}
	pfree(ends);
}
