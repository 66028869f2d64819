/*
 * kafka_mock: a Kafka cluster for flowstate's tests and benchmark.
 *
 *	kafka_mock [property=value ...]
 *
 * Starts librdkafka's mock cluster (3 brokers, in this process), prints
 *
 *	ready <bootstrap servers>
 *
 * then reads commands on standard input, one per line, and answers each
 * with one line:
 *
 *	topic NAME PARTITIONS		create a topic				-> ok
 *	produce TOPIC FILE [keyed|partitioned]
 *								each line of FILE is a message, line i
 *								going to partition i % PARTITIONS;
 *								"keyed": KEY<TAB>VALUE; "partitioned":
 *								PARTITION<TAB>VALUE, to that partition;
 *								"timed": MILLISECONDS<TAB>KEY<TAB>VALUE,
 *								the message's timestamp (Unix epoch),
 *								to the partition of its key (a hash, as
 *								producers partition keyed messages);
 *								a line \null is a message without a
 *								value						-> produced N
 *	committed GROUP TOPIC		the offsets the consumer group GROUP
 *								committed for TOPIC, summed over its
 *								partitions (those without count 0)
 *													-> committed N
 *	down / up					every broker goes down / up	-> ok
 *	quit
 *
 * The mock keeps only a few MiB per partition: produce while consuming.
 * The properties configure the producer; with a longer linger.ms it sends
 * bigger batches, which the mock serves one per partition and fetch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define BROKERS 3
#define MAX_TOPICS 64

static struct
{
	char		name[256];
	int			partitions;
}			topics[MAX_TOPICS];
static int	ntopics = 0;

static void
fail(const char *what, const char *detail)
{
	fprintf(stderr, "kafka_mock: %s: %s\n", what, detail);
	exit(1);
}

static int
partitions_of(const char *topic)
{
	for (int i = 0; i < ntopics; i++)
		if (strcmp(topics[i].name, topic) == 0)
			return topics[i].partitions;
	return -1;
}

static long
produce(rd_kafka_t *producer, const char *topic, const char *file, int keyed, int partitioned,
		int timed)
{
	FILE	   *in = fopen(file, "rb");
	char	   *line = NULL;
	size_t		cap = 0;
	ssize_t		len;
	long		n = 0;
	int			partitions = partitions_of(topic);

	if (in == NULL)
		fail("cannot open", file);
	if (partitions < 1)
		fail("unknown topic", topic);
	while ((len = getline(&line, &cap, in)) >= 0)
	{
		char	   *key = NULL;
		size_t		keylen = 0;
		char	   *value = line;
		rd_kafka_resp_err_t err;

		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		int32_t		partition = (int32_t) (n % partitions);
		int64_t		timestamp = 0;	/* now */

		if (timed)
		{
			char	   *tab = memchr(line, '\t', len);

			if (tab == NULL)
				fail("no timestamp in", line);
			timestamp = strtoll(line, NULL, 10);
			len -= tab + 1 - line;
			memmove(line, tab + 1, len + 1);
			keyed = 1;
		}
		if (partitioned)
		{
			char	   *tab = memchr(line, '\t', len);

			if (tab == NULL)
				fail("no partition in", line);
			partition = (int32_t) atoi(line);
			len -= tab + 1 - line;
			value = tab + 1;
		}
		else if (keyed)
		{
			char	   *tab = memchr(line, '\t', len);

			if (tab != NULL)
			{
				key = line;
				keylen = tab - line;
				value = tab + 1;
				len -= keylen + 1;
			}
		}
		if (timed && key != NULL)
		{
			uint32_t	hash = 2166136261u;

			for (size_t i = 0; i < keylen; i++)
				hash = (hash ^ (unsigned char) key[i]) * 16777619u;
			partition = (int32_t) (hash % (uint32_t) partitions);
		}
		if (strcmp(value, "\\null") == 0)
		{
			value = NULL;
			len = 0;
		}
		for (;;)
		{
			err = rd_kafka_producev(producer,
									RD_KAFKA_V_TOPIC(topic),
									RD_KAFKA_V_PARTITION(partition),
									RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
									RD_KAFKA_V_KEY(key, keylen),
									RD_KAFKA_V_VALUE(value, (size_t) len),
									RD_KAFKA_V_TIMESTAMP(timestamp),
									RD_KAFKA_V_END);
			if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
				break;
			rd_kafka_poll(producer, 10);
		}
		if (err)
			fail("produce", rd_kafka_err2str(err));
		n++;
		rd_kafka_poll(producer, 0);
	}
	free(line);
	fclose(in);
	if (rd_kafka_flush(producer, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		fail("produce", "messages were not delivered within 60 s");
	return n;
}

/* The sum of the offsets group committed for topic's partitions. */
static long
committed(rd_kafka_mock_cluster_t *mcluster, const char *group, const char *topic)
{
	char		errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *consumer;
	rd_kafka_topic_partition_list_t *list;
	int			partitions = partitions_of(topic);
	long		sum = 0;

	if (partitions < 1)
		fail("unknown topic", topic);
	if (rd_kafka_conf_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mcluster),
						  errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)))
		fail("configuration", errstr);
	consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (consumer == NULL)
		fail("consumer", errstr);
	list = rd_kafka_topic_partition_list_new(partitions);
	for (int p = 0; p < partitions; p++)
		rd_kafka_topic_partition_list_add(list, topic, p);
	if (rd_kafka_committed(consumer, list, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
		fail("committed", group);
	for (int i = 0; i < list->cnt; i++)
		if (list->elems[i].offset > 0)
			sum += (long) list->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(list);
	rd_kafka_destroy(consumer);
	return sum;
}

static void
delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err)
		fail("delivery", rd_kafka_err2str(m->err));
}

int
main(int argc, char **argv)
{
	char		errstr[512];
	char		cmd[4096];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *producer;
	rd_kafka_mock_cluster_t *mcluster;
	char		brokers[16];

	snprintf(brokers, sizeof(brokers), "%d", BROKERS);
	if (rd_kafka_conf_set(conf, "test.mock.num.brokers", brokers, errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) ||
		rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", errstr, sizeof(errstr)))
		fail("configuration", errstr);
	for (int i = 1; i < argc; i++)
	{
		char	   *eq = strchr(argv[i], '=');

		if (eq == NULL)
			fail("not a property=value", argv[i]);
		*eq = '\0';
		if (rd_kafka_conf_set(conf, argv[i], eq + 1, errstr, sizeof(errstr)))
			fail("configuration", errstr);
	}
	rd_kafka_conf_set_dr_msg_cb(conf, delivered);
	producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (producer == NULL)
		fail("producer", errstr);
	mcluster = rd_kafka_handle_mock_cluster(producer);
	if (mcluster == NULL)
		fail("mock cluster", "not created");

	printf("ready %s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
	fflush(stdout);

	while (fgets(cmd, sizeof(cmd), stdin) != NULL)
	{
		char		a[1024] = "",
					b[2048] = "",
					c[64] = "";
		int			n = sscanf(cmd, "%1023s %2047s %63s", a, b, c);
		char		verb[32] = "";

		if (sscanf(cmd, "%31s", verb) != 1)
			continue;
		if (strcmp(verb, "quit") == 0)
			break;
		if (strcmp(verb, "topic") == 0)
		{
			int			parts;

			if (sscanf(cmd, "topic %1023s %d", a, &parts) != 2 || ntopics == MAX_TOPICS)
				fail("bad command", cmd);
			if (rd_kafka_mock_topic_create(mcluster, a, parts, 1))
				fail("topic", a);
			snprintf(topics[ntopics].name, sizeof(topics[ntopics].name), "%s", a);
			topics[ntopics++].partitions = parts;
			printf("ok\n");
		}
		else if (strcmp(verb, "produce") == 0)
		{
			if (sscanf(cmd, "produce %1023s %2047s %63s", a, b, c) < 2)
				fail("bad command", cmd);
			printf("produced %ld\n", produce(producer, a, b, strcmp(c, "keyed") == 0,
											  strcmp(c, "partitioned") == 0,
											  strcmp(c, "timed") == 0));
		}
		else if (strcmp(verb, "committed") == 0)
		{
			if (sscanf(cmd, "committed %1023s %2047s", a, b) != 2)
				fail("bad command", cmd);
			printf("committed %ld\n", committed(mcluster, a, b));
		}
		else if (strcmp(verb, "down") == 0 || strcmp(verb, "up") == 0)
		{
			for (int id = 1; id <= BROKERS; id++)
				if ((strcmp(verb, "down") == 0 ?
					 rd_kafka_mock_broker_set_down(mcluster, id) :
					 rd_kafka_mock_broker_set_up(mcluster, id)))
					fail(verb, "broker");
			printf("ok\n");
		}
		else
			fail("unknown command", cmd);
		(void) n;
		fflush(stdout);
	}
	rd_kafka_destroy(producer);
	return 0;
}
