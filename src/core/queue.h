/* SPDX-License-Identifier: MIT */
/*
 * The singly-linked FIFO the pool, the loops' mailboxes, the stores, the event sinks and the
 * rehearsal keep (a head, a tail, and a `next` member in the element): one append, so it
 * is written once. Not thread-safe by itself; callers hold their own lock.
 */
#ifndef CORE_QUEUE_H
#define CORE_QUEUE_H

/* Appends x as the new tail: x->next is cleared, head is set if the queue was empty. */
#define QUEUE_APPEND(head, tail, x, next)                                                          \
    do {                                                                                           \
        (x)->next = NULL;                                                                          \
        if (tail)                                                                                  \
            (tail)->next = (x);                                                                    \
        else                                                                                       \
            (head) = (x);                                                                          \
        (tail) = (x);                                                                              \
    } while (0)

#endif
