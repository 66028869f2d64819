/*-------------------------------------------------------------------------
 *
 * waker.c
 *	  A thread that wakes librdkafka's broker threads while the worker
 *	  catches up, so that their prefetch never runs dry.
 *
 * librdkafka's broker threads fetch a partition only while the prefetch
 * queue holds less than queued.min.messages and queued.max.messages.kbytes
 * (for the consumer's one queue, to which every partition forwards).  A
 * broker thread that finds its partitions' queue full stops fetching for
 * them, and decides again only when something wakes it: a response, a
 * request to send, or the end of its wait, up to a second later (before
 * librdkafka 2.1, which adds fetch.queue.backoff.ms, nothing else).  A
 * worker that consumes a backlog faster than one fetch a second brings
 * would then find the queue empty for a good part of every second.
 *
 * So when the queue falls under queued.min.messages while the partitions'
 * ends (as the last fetches told) show messages left, the worker pokes
 * this thread, which asks the brokers for the ends of the worker's
 * partitions (rd_kafka_offsets_for_times): the request wakes each broker
 * thread, which then fetches, while the worker goes on consuming what the
 * queue still holds.  The answer goes unused.  The question waits behind
 * the fetches in flight, hence a thread of its own rather than the
 * worker's.
 *
 * Protocol: the worker's thread alone calls KafkaWakerStart, KafkaWakerPoke
 * and KafkaWakerStop; the waker thread calls librdkafka only (thread-safe),
 * never PostgreSQL (no palloc, no ereport), on a copy of the partition list
 * that it owns.  `lock` guards `poked` and `stopping`; the worker stops and
 * joins the thread before it destroys the consumer.  The thread runs with
 * every signal blocked, as librdkafka's own: PostgreSQL's handlers run on
 * the worker's thread.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>

#include <librdkafka/rdkafka.h>

#include "sources/kafka/consumer_internal.h"

/* How long the thread waits for the brokers' answer (it is not used). */
#define WAKER_QUERY_MS		1000

static pthread_t waker_thread;
static bool waker_running = false;
static pthread_mutex_t waker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t waker_cond = PTHREAD_COND_INITIALIZER;
static bool waker_poked;
static bool waker_stopping;

/* What the thread asks about: the consumer, and its own partition list. */
typedef struct WakerArgs
{
	rd_kafka_t *rk;
	rd_kafka_topic_partition_list_t *partitions;
} WakerArgs;

static WakerArgs waker_args;

static void *
waker_main(void *arg)
{
	WakerArgs  *args = arg;

	pthread_mutex_lock(&waker_lock);
	for (;;)
	{
		while (!waker_poked && !waker_stopping)
			pthread_cond_wait(&waker_cond, &waker_lock);
		if (waker_stopping)
			break;
		waker_poked = false;
		pthread_mutex_unlock(&waker_lock);

		for (int i = 0; i < args->partitions->cnt; i++)
			args->partitions->elems[i].offset = RD_KAFKA_OFFSET_END;
		(void) rd_kafka_offsets_for_times(args->rk, args->partitions, WAKER_QUERY_MS);

		pthread_mutex_lock(&waker_lock);
	}
	pthread_mutex_unlock(&waker_lock);
	return NULL;
}

/*
 * KafkaWakerStart starts the thread for the consumer rk and the partitions
 * in list (copied), after stopping the one of an earlier assignment.  Without
 * a thread (it could not start), the worker goes on as librdkafka lets it.
 */
void
KafkaWakerStart(rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *list)
{
	sigset_t	all,
				old;
	int			rc;

	KafkaWakerStop();
	if (list->cnt == 0)
		return;
	waker_args.rk = rk;
	waker_args.partitions = rd_kafka_topic_partition_list_copy(list);
	waker_poked = false;
	waker_stopping = false;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&waker_thread, NULL, waker_main, &waker_args);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
	{
		rd_kafka_topic_partition_list_destroy(waker_args.partitions);
		waker_args.partitions = NULL;
		ereport(LOG,
				(errmsg("flowstate kafka: could not start the thread that wakes the broker threads: %s",
						strerror(rc))));
		return;
	}
	waker_running = true;
}

/* KafkaWakerPoke asks the thread to wake the broker threads (at once). */
void
KafkaWakerPoke(void)
{
	if (!waker_running)
		return;
	pthread_mutex_lock(&waker_lock);
	waker_poked = true;
	pthread_cond_signal(&waker_cond);
	pthread_mutex_unlock(&waker_lock);
}

/*
 * KafkaWakerStop stops the thread and waits for it: at most the time its
 * question to the brokers may take.
 */
void
KafkaWakerStop(void)
{
	if (!waker_running)
		return;
	pthread_mutex_lock(&waker_lock);
	waker_stopping = true;
	pthread_cond_signal(&waker_cond);
	pthread_mutex_unlock(&waker_lock);
	pthread_join(waker_thread, NULL);
	waker_running = false;
	rd_kafka_topic_partition_list_destroy(waker_args.partitions);
	waker_args.partitions = NULL;
}
