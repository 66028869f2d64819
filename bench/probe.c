/*
 * probe: latency probes of the flowstate benchmark (bench/run.sh).
 *
 *	probe visible CONNINFO
 *		Until SIGTERM: insert a row into bench_probe, and from the moment
 *		the commit returns, poll the continuous view probe_last until it
 *		shows the row; then pause 20 ms.  Prints the commit-to-visible
 *		times in milliseconds, one per line.
 *
 *	probe read CONNINFO COUNT SQL
 *		Run SQL COUNT times as a client would (simple query protocol);
 *		prints each run's time in milliseconds, one per line.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "libpq-fe.h"

static volatile sig_atomic_t stop = 0;

static void
on_term(int sig)
{
	(void) sig;
	stop = 1;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static PGresult *
run(PGconn *conn, const char *sql, ExecStatusType expect)
{
	PGresult   *res = PQexec(conn, sql);

	if (PQresultStatus(res) != expect)
	{
		fprintf(stderr, "probe: %s: %s", sql, PQerrorMessage(conn));
		exit(1);
	}
	return res;
}

static int
visible(PGconn *conn)
{
	char		sql[128];
	long		id = 0;

	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	while (!stop)
	{
		double		committed;

		id++;
		snprintf(sql, sizeof(sql), "INSERT INTO bench_probe VALUES (%ld)", id);
		PQclear(run(conn, sql, PGRES_COMMAND_OK));
		committed = now_ms();
		for (;;)
		{
			PGresult   *res = run(conn, "SELECT last FROM probe_last", PGRES_TUPLES_OK);
			int			seen = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0) &&
				atol(PQgetvalue(res, 0, 0)) >= id;

			PQclear(res);
			if (seen)
				break;
			if (stop)
				return 0;
			usleep(500);
		}
		printf("%.3f\n", now_ms() - committed);
		fflush(stdout);
		usleep(20000);
	}
	return 0;
}

static int
read_query(PGconn *conn, int count, const char *sql)
{
	for (int i = 0; i < count; i++)
	{
		double		start = now_ms();

		PQclear(run(conn, sql, PGRES_TUPLES_OK));
		printf("%.3f\n", now_ms() - start);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;

	if (argc < 3 || (strcmp(argv[1], "read") == 0 && argc != 5))
	{
		fprintf(stderr, "usage: probe visible CONNINFO | probe read CONNINFO COUNT SQL\n");
		return 2;
	}
	conn = PQconnectdb(argv[2]);
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "probe: %s", PQerrorMessage(conn));
		return 1;
	}
	if (strcmp(argv[1], "visible") == 0)
		return visible(conn);
	return read_query(conn, atoi(argv[3]), argv[4]);
}
