/*-------------------------------------------------------------------------
 *
 * consumer_internal.h
 *	  What the files of the Kafka worker share: the worker's state
 *	  (consumer.c) and its partitions (partitions.c).  Private to
 *	  sources/kafka/.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FLOWSTATE_CONSUMER_INTERNAL_H
#define FLOWSTATE_CONSUMER_INTERNAL_H

#include <librdkafka/rdkafka.h>

#include "engine/ingest.h"
#include "state/state_store.h"
#include "workers/source.h"
#include "sources/kafka/stream.h"

/* A view over the stream, as this worker applies messages to it. */
typedef struct KafkaView
{
	ViewRuntime *vr;
	StoreKey	key;
	uint64		generation;		/* of its shared view, when last seen */
	int64	   *next;			/* per partition: next offset to apply, -1 unknown */
	int			nnext;
} KafkaView;

/* The worker: its stream, views and consumer. */
typedef struct KafkaConsumer
{
	SourceWorker *worker;		/* the loop running it; its views' runtimes */
	WorkerSlot *slot;
	Oid			relid;
	int			index;
	bool		owner;			/* worker 0: registers, loads, flushes */

	MemoryContext views_cxt;	/* the stream, the views, the consumer's lists */
	StreamDef  *stream;
	char	   *signature;		/* the stream's options, to notice changes */
	List	   *views;			/* KafkaView */
	TupleTableSlot *row;

	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	int			npartitions;	/* of the topic */
	bool		assigned;
	TimestampTz metadata_at;

	MemoryContext msg_cxt;		/* one message, reset after it */
	MemoryContext rows_cxt;		/* messages no view could read */
	List	   *stream_rows;
	bool		unmerged;		/* a batch shared memory refused waits */
	TimestampTz lag_asked_at;
	TimestampTz woken_at;		/* the broker threads, last (KafkaMeasureLag) */
	int64		prefetch;		/* queued.min.messages */
} KafkaConsumer;

/* The Kafka worker of this process (consumer.c). */
extern KafkaConsumer *MyConsumer;

/* consumer.c */
extern void KafkaSetDegraded(const char *error);
extern bool KafkaMine(int32 partition);
extern void KafkaViewGrow(KafkaView *kv, int n);
extern SharedView *KafkaFindView(KafkaView *kv);
extern void KafkaReleaseView(SharedView *sv);

/* partitions.c */
extern int	KafkaTopicPartitions(void);
extern bool KafkaAssign(void);
extern void KafkaMeasureLag(bool fresh, TimestampTz checked_at);

/* waker.c */
extern void KafkaWakerStart(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list);
extern void KafkaWakerPoke(void);
extern void KafkaWakerStop(void);

#endif							/* FLOWSTATE_CONSUMER_INTERNAL_H */
