/* Context-switch load for bench/probes/run.sh: PAIRS pairs of threads pass one byte back and
 * forth through pipes for SECONDS, so every hop is a wake-up followed by a switch.
 * Prints the hops per second. Usage: switch_load PAIRS SECONDS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct pair {
	int ping[2], pong[2];
	unsigned long hops;
	pthread_t client, server;
};

static volatile int stop;

static void *serve(void *arg)
{
	struct pair *p = arg;
	char c;

	while (read(p->ping[0], &c, 1) == 1 && write(p->pong[1], &c, 1) == 1)
		;
	return NULL;
}

static void *drive(void *arg)
{
	struct pair *p = arg;
	char c = 'x';

	while (!stop && write(p->ping[1], &c, 1) == 1 && read(p->pong[0], &c, 1) == 1)
		p->hops += 2;
	close(p->ping[1]); /* the server's read() returns 0 and it exits */
	return NULL;
}

int main(int argc, char **argv)
{
	int pairs = argc > 1 ? atoi(argv[1]) : 2, seconds = argc > 2 ? atoi(argv[2]) : 5;
	struct pair *p = calloc((size_t)pairs, sizeof(*p));
	unsigned long hops = 0;

	if (!p || pairs <= 0 || seconds <= 0) {
		fprintf(stderr, "usage: switch_load PAIRS SECONDS\n");
		return 2;
	}
	for (int i = 0; i < pairs; i++) {
		if (pipe(p[i].ping) || pipe(p[i].pong) || pthread_create(&p[i].server, NULL, serve, &p[i]) ||
		    pthread_create(&p[i].client, NULL, drive, &p[i])) {
			perror("switch_load");
			return 1;
		}
	}
	sleep((unsigned)seconds);
	stop = 1;
	for (int i = 0; i < pairs; i++) {
		pthread_join(p[i].client, NULL);
		pthread_join(p[i].server, NULL);
		hops += p[i].hops;
	}
	printf("%lu hops/s\n", hops / (unsigned long)seconds);
	return 0;
}
