// SPDX-License-Identifier: MIT
/* Transport lookup by name: only backends that work in this build. */
#include <string.h>

#include "vfm/transport.h"

static const struct vfm_xport_ops *const vfm_xports[] = {
	&vfm_xport_tcp_ops,
	&vfm_xport_rdma_ops,
};

const struct vfm_xport_ops *vfm_xport_find(const char *name)
{
	size_t i;

	if (!name)
		return NULL;
	for (i = 0; i < sizeof(vfm_xports) / sizeof(vfm_xports[0]); i++)
		if (!strcmp(vfm_xports[i]->name, name))
			return vfm_xports[i];
	return NULL;
}
