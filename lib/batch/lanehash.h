/*
 * Which lane (connection to AWS, issue 13) carries a topic. Outbound
 * messages are assigned by their AWS topic, so each topic's messages take
 * one connection and keep their order. The assignment must be the same on
 * every gateway, architecture and restart, so that a restart (or a queue
 * moved to another gateway) sends each topic's backlog the way it went
 * before: no seeded hash (lib/base/hmap.c's is seeded on purpose), no
 * floating point.
 *
 *  - lanehash_topic(): 64-bit FNV-1a over the topic's bytes, finished with
 *    MurmurHash3's fmix64 so that topics differing in their last character
 *    spread over all lanes.
 *  - lanehash_pick(): Lamping and Veach's jump consistent hash ("A Fast,
 *    Minimal Memory, Consistent Hash Algorithm", 2014), in integer
 *    arithmetic (it agrees with the paper's floating-point code). Going
 *    from n to n + 1 lanes moves only the 1/(n + 1) of the topics that the
 *    new lane takes; every other topic stays where it was.
 *
 * A hash spreads many topics evenly, few topics only roughly: 40 topics on 4
 * lanes typically give the busiest lane 12 to 14 of them. Pure functions;
 * nothing is kept.
 */
#ifndef IOTB_LANEHASH_H
#define IOTB_LANEHASH_H

#include <stddef.h>
#include <stdint.h>

/* The hash of topic[0..len) (borrowed). */
uint64_t	lanehash_topic(const void *topic, size_t len);

/* The lane of a hash among n lanes: 0..n-1. n must be at least 1. */
uint32_t	lanehash_pick(uint64_t hash, uint32_t n);

#endif
