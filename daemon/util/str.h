/*
 * Small string helpers the daemon's modules share.
 */
#ifndef IOTB_STR_H
#define IOTB_STR_H

#include <stdlib.h>
#include <string.h>

/* a b c in a new string; NULL when out of memory. */
static inline char *
str_concat3(const char *a, const char *b, const char *c)
{
	size_t al = strlen(a), bl = strlen(b), cl = strlen(c);
	char *p;

	if ((p = malloc(al + bl + cl + 1)) == NULL)
		return NULL;
	memcpy(p, a, al);
	memcpy(p + al, b, bl);
	memcpy(p + al + bl, c, cl + 1);
	return p;
}

#endif
