/* SPDX-License-Identifier: MIT */
/* The release version, reported by --version, /metrics (build_info) and the Server log. */
#ifndef CORE_VERSION_H
#define CORE_VERSION_H

#define FG_VERSION "0.1.0"

#endif
