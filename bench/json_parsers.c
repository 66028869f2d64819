/*
 * json_parsers: PostgreSQL's JSON parser beside the one Kafka streams use.
 *
 *	json_parsers [messages]
 *
 * Reads 1,000 distinct ~80-byte messages {"ts":…,"key":…,"value":…} over and
 * over (2,000,000 reads by default) with
 *	- PostgreSQL's parser (src/common/jsonapi.c, the frontend build in
 *	  libpgcommon): pg_parse_json with field and scalar callbacks, the way
 *	  json_populate_record reads an object;
 *	- flowstate's reader (src/json.cpp, simdjson On Demand), exactly as the
 *	  Kafka worker calls it;
 * each taking the three fields' text, and prints the time per message and
 * the ratio.  Each parser gets five runs; the median counts.
 */
#include "postgres_fe.h"

#include <time.h>

#include "common/jsonapi.h"
#include "sources/kafka/json.h"
#include "mb/pg_wchar.h"

#define DISTINCT 1000
#define MSG_SIZE 128
#define RUNS 5

typedef struct Fields
{
	int			current;		/* field being read, or -1 */
	const char *text[3];
	size_t		len[3];
} Fields;

static const char *const names[3] = {"ts", "key", "value"};

static char messages[DISTINCT][MSG_SIZE + JSON_PADDING];
static size_t lengths[DISTINCT];
static long sink;

static double
seconds(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int
field_index(const char *key, size_t len)
{
	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == len && memcmp(names[i], key, len) == 0)
			return i;
	return -1;
}

/* PostgreSQL's parser: semantic callbacks */
static void
pg_field_start(void *state, char *fname, bool isnull)
{
	Fields	   *f = state;

	f->current = field_index(fname, strlen(fname));
	free(fname);
}

static void
pg_scalar(void *state, char *token, JsonTokenType type)
{
	Fields	   *f = state;

	/* the token is a copy, the caller's to keep or free */
	if (f->current >= 0)
		sink += token[0];
	free(token);
}

static double
run_postgres(long n)
{
	Fields		f;
	JsonSemAction sem = {0};
	double		start = seconds();

	sem.semstate = &f;
	sem.object_field_start = pg_field_start;
	sem.scalar = pg_scalar;
	for (long i = 0; i < n; i++)
	{
		int			m = i % DISTINCT;
		JsonLexContext *lex = makeJsonLexContextCstringLen(messages[m], lengths[m],
														   PG_UTF8, true);

		f.current = -1;
		if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		{
			fprintf(stderr, "json_parsers: PostgreSQL refused message %d\n", m);
			exit(1);
		}
		if (lex->strval)
		{
			free(lex->strval->data);
			free(lex->strval);
		}
		free(lex);
	}
	return seconds() - start;
}

/* flowstate's reader */
static bool
simd_field(void *arg, const char *key, size_t keylen, JsonKind kind,
		   const char *text, size_t len)
{
	Fields	   *f = arg;
	int			i = field_index(key, keylen);

	if (i >= 0)
	{
		f->text[i] = text;
		f->len[i] = len;
		sink += text[0];
	}
	return true;
}

static double
run_simdjson(long n)
{
	Fields		f;
	double		start = seconds();

	for (long i = 0; i < n; i++)
	{
		int			m = i % DISTINCT;
		const char *error = JsonReadObject(messages[m], lengths[m], simd_field, &f);

		if (error)
		{
			fprintf(stderr, "json_parsers: simdjson refused message %d: %s\n", m, error);
			exit(1);
		}
	}
	return seconds() - start;
}

static int
compare(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
median_of(double (*run) (long), long n)
{
	double		t[RUNS];

	for (int r = 0; r < RUNS; r++)
		t[r] = run(n);
	qsort(t, RUNS, sizeof(double), compare);
	return t[RUNS / 2];
}

int
main(int argc, char **argv)
{
	long		n = argc > 1 ? atol(argv[1]) : 2000000;
	double		pg,
				simd;
	size_t		total = 0;

	for (int i = 0; i < DISTINCT; i++)
	{
		lengths[i] = snprintf(messages[i], MSG_SIZE,
							  "{\"ts\":\"2026-01-01T00:%02d:%02d.%03dZ\",\"key\":\"sensor-%05d\",\"value\":%d.%06d}",
							  i % 60, i * 7 % 60, i, i * 37 % 1000, i * 101, i * 7919 % 1000000);
		total += lengths[i];
	}
	printf("json parsers: %ld reads of %d messages of %.0f bytes, e.g. %s\n",
		   n, DISTINCT, (double) total / DISTINCT, messages[1]);

	pg = median_of(run_postgres, n);
	simd = median_of(run_simdjson, n);
	printf("  PostgreSQL jsonapi  %8.3f us/message  %6.2f M messages/s\n", pg / n * 1e6, n / pg / 1e6);
	printf("  simdjson (flowstate)%8.3f us/message  %6.2f M messages/s\n", simd / n * 1e6, n / simd / 1e6);
	printf("  simdjson is %.1fx as fast (median of %d runs each)%s\n", pg / simd, RUNS,
		   sink == 42 ? " " : "");
	return 0;
}
