/* SPDX-License-Identifier: Apache-2.0 */
/*
 * handler_info.c: the description a handler file carries in its ELF
 * section .tcmu_handler (subtype, name, config description), so that the
 * daemon can list a handler and offer it on D-Bus without dlopening it:
 * dlopen would map and relocate every library the handler needs (librbd
 * and librados are most of the daemon's memory, and take seconds to load
 * under emulation), for handlers no device may ever use.
 *
 * The build writes the section from the handler itself (tools/handler_info.c
 * runs the loader's checks on it); the section is not loaded into memory,
 * so the handler's code never sees it: the daemon maps it from the file. Its content is the tag, the
 * subtype, the name and the config description, each ending in a NUL.
 */
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tcmu_internal.h"

#define HANDLER_INFO_TAG "tcmu-handler 1"
/* A description beyond this is not one of ours. */
#define HANDLER_INFO_SIZE_LIMIT 65536

#if __ELF_NATIVE_CLASS == 64
#define ELF_NATIVE_CLASS ELFCLASS64
#else
#define ELF_NATIVE_CLASS ELFCLASS32
#endif

/* Reads exactly size bytes at offset, all inside the file: 0 or -errno. */
static int read_at(int fd, uint64_t file_size, uint64_t offset, void *buffer, size_t size)
{
	ssize_t done;

	if (offset > file_size || size > file_size - offset)
		return -EINVAL;
	done = pread(fd, buffer, size, (off_t)offset);
	if (done < 0)
		return -errno;
	return (size_t)done == size ? 0 : -EINVAL;
}

static int section_header_at(int fd, uint64_t file_size, const ElfW(Ehdr) *header,
			     unsigned int index, ElfW(Shdr) *section)
{
	return read_at(fd, file_size, header->e_shoff + (uint64_t)index * sizeof(*section),
		       section, sizeof(*section));
}

/*
 * Finds HANDLER_INFO_SECTION in an ELF file of the daemon's own class.
 * 0 with its offset and size, -ENODATA when the file has none or is no
 * ELF file (dlopen will say what it is), -EINVAL when it is malformed or
 * of another class.
 */
static int section_find(int fd, uint64_t file_size, uint64_t *ret_offset, uint64_t *ret_size)
{
	static const char wanted[] = HANDLER_INFO_SECTION;
	ElfW(Ehdr) header;
	ElfW(Shdr) names, section;
	char name[sizeof(wanted)];
	int result;

	if (read_at(fd, file_size, 0, &header, sizeof(header)) < 0)
		return -ENODATA;
	if (memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
		return -ENODATA;
	if (header.e_ident[EI_CLASS] != ELF_NATIVE_CLASS ||
	    header.e_shentsize != sizeof(ElfW(Shdr)) || header.e_shstrndx >= header.e_shnum)
		return -EINVAL;
	result = section_header_at(fd, file_size, &header, header.e_shstrndx, &names);
	if (result < 0)
		return result;
	for (unsigned int index = 0; index < header.e_shnum; index++) {
		result = section_header_at(fd, file_size, &header, index, &section);
		if (result < 0)
			return result;
		if (section.sh_name >= names.sh_size ||
		    names.sh_size - section.sh_name < sizeof(wanted) ||
		    read_at(fd, file_size, names.sh_offset + section.sh_name, name,
			    sizeof(name)) < 0 ||
		    memcmp(name, wanted, sizeof(wanted)) != 0)
			continue;
		if (section.sh_type == SHT_NOBITS)
			return -EINVAL;
		*ret_offset = section.sh_offset;
		*ret_size = section.sh_size;
		return 0;
	}
	return -ENODATA;
}

/* Splits the section's content into info: 0 or -EINVAL. */
static int info_parse(const char *content, size_t size, struct handler_info *info)
{
	const char *fields[4];
	size_t count = 0, start = 0;

	if (size == 0 || content[size - 1] != '\0')
		return -EINVAL;
	for (size_t i = 0; i < size; i++) {
		if (content[i] != '\0')
			continue;
		if (count == ARRAY_SIZE(fields))
			return -EINVAL;
		fields[count++] = content + start;
		start = i + 1;
	}
	if (count != ARRAY_SIZE(fields) || strcmp(fields[0], HANDLER_INFO_TAG) != 0 ||
	    !fields[1][0])
		return -EINVAL;
	info->subtype = fields[1];
	info->name = fields[2];
	info->config_description = fields[3];
	return 0;
}

int handler_info_read(const char *path, struct handler_info *info)
{
	long page_size = sysconf(_SC_PAGESIZE);
	uint64_t offset, size, start;
	struct stat status;
	int fd, result;

	memset(info, 0, sizeof(*info));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &status) < 0) {
		result = -errno;
		goto out;
	}
	result = section_find(fd, (uint64_t)status.st_size, &offset, &size);
	if (result < 0)
		goto out;
	if (size == 0 || size > HANDLER_INFO_SIZE_LIMIT || offset > (uint64_t)status.st_size ||
	    size > (uint64_t)status.st_size - offset) {
		result = -EINVAL;
		goto out;
	}
	start = offset & ~(uint64_t)(page_size - 1);
	info->mapping_length = (size_t)(offset + size - start);
	info->mapping = mmap(NULL, info->mapping_length, PROT_READ, MAP_PRIVATE, fd, (off_t)start);
	if (info->mapping == MAP_FAILED) {
		result = -errno;
		info->mapping = NULL;
		goto out;
	}
	result = info_parse((const char *)info->mapping + (offset - start), size, info);
	if (result < 0)
		handler_info_release(info);
out:
	close(fd);
	return result;
}

int handler_info_write(const struct tcmu_handler *ops, FILE *out)
{
	const char *fields[] = { HANDLER_INFO_TAG, ops->subtype, ops->name ? ops->name : "",
				 ops->config_description ? ops->config_description : "" };

	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		if (fwrite(fields[i], 1, strlen(fields[i]) + 1, out) != strlen(fields[i]) + 1)
			return -EIO;
	return 0;
}

void handler_info_release(struct handler_info *info)
{
	if (info->mapping)
		munmap(info->mapping, info->mapping_length);
	memset(info, 0, sizeof(*info));
}
