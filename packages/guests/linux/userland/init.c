/*
 * init: PID 1 of ftvm's rv32 Linux image, the kv service (docs/kv-protocol.md) on Linux.
 *
 * It answers exactly as the bare-metal server does, with the same core (packages/guests/images/
 * kv_service.h: requests, answers, the store and the disk layout):
 * the same requests, answers and ERR reasons, the same exactly-once rule (per client address and
 * port, the answers to its last 32 ids; 64 clients, the least recently heard-from forgotten
 * first) and the same disk layout, so one kv disk image serves with either.
 *
 * Boot: mount /dev, /proc and /sys; open /dev/vda and load or format the store; bring up lo, and
 * eth0 as 10.0.2.15/24 with the default route via 10.0.2.2; serve UDP port 5555. A line
 * "poweroff" on the console powers the board off cleanly. When something essential fails, it says
 * why and powers off.
 *
 * Built with the kernel's nolibc (no C library; see nolibc-rv32.h): error results are negative
 * errno values, as nolibc's sys_*() functions return them.
 */
#include <stdbool.h>
#include <linux/if.h>
#include <linux/in.h>
#include <linux/route.h>
#include <linux/sockios.h>
#include <sys/socket.h>

#include "../../images/kv_service.h"

/* kv.elf's network stack (the SDK's) takes a datagram only when it fits one Ethernet frame: it does
 * not reassemble IP fragments. Longer datagrams are ignored here too, so that both servers answer
 * the same (those get no answer at all). */
#define DATAGRAM_BYTES_MAX 1472u

#define DISK_PATH "/dev/vda"

/* asm-generic/fcntl.h: nolibc 6.1 defines the other O_ flags but not this one. */
#define O_DIRECT 040000

/* ---- system calls nolibc 6.1 does not wrap (rv32 numbers from asm-generic/unistd.h) ---- */

static long sys_socket(int domain, int type, int protocol) {
  return my_syscall3(__NR_socket, domain, type, protocol);
}

static long sys_bind(int fd, const void *address, uint32_t length) {
  return my_syscall3(__NR_bind, fd, address, length);
}

static long sys_recvfrom(int fd, void *buffer, uint32_t length, int flags, void *from, uint32_t *from_length) {
  return my_syscall6(__NR_recvfrom, fd, buffer, length, flags, from, from_length);
}

static long sys_sendto(int fd, const void *buffer, uint32_t length, int flags, const void *to, uint32_t to_length) {
  return my_syscall6(__NR_sendto, fd, buffer, length, flags, to, to_length);
}

/* The 64-bit offset is passed as two registers, low half first (rv32 has no syscall wrappers in 6.1). */
static long sys_pread64(int fd, void *buffer, uint32_t length, uint64_t offset) {
  return my_syscall5(__NR_pread64, fd, buffer, length, (uint32_t)offset, (uint32_t)(offset >> 32));
}

static long sys_pwrite64(int fd, const void *buffer, uint32_t length, uint64_t offset) {
  return my_syscall5(__NR_pwrite64, fd, buffer, length, (uint32_t)offset, (uint32_t)(offset >> 32));
}

/* Waits without a timeout (rv32 has only the time64 ppoll; with no timeout the time layout does not matter). */
static long sys_ppoll_forever(struct pollfd *fds, uint32_t count) {
  return my_syscall5(__NR_ppoll_time64, fds, count, NULL, NULL, 0);
}

/* ---- the console ---- */

/* Writes one line in one write(), so that a kernel message cannot land inside it. */
static void say(const char *first, ...) {
  static char line[256];
  uint32_t length = 0;
  va_list pieces;
  va_start(pieces, first);
  for (const char *piece = first; piece != NULL; piece = va_arg(pieces, const char *)) {
    for (; *piece != '\0' && length < sizeof line - 1; piece++) line[length++] = *piece;
  }
  va_end(pieces);
  line[length++] = '\n';
  sys_write(1, line, length);
}

/* A number for say(), in `buffer` (12 bytes). */
static const char *decimal(char *buffer, uint32_t value) {
  utoa_r(value, buffer);
  return buffer;
}

static const char *errno_text(char *buffer, long error) {
  static const char prefix[] = "errno ";
  memcpy(buffer, prefix, sizeof prefix - 1);
  utoa_r((uint32_t)-error, buffer + sizeof prefix - 1);
  return buffer;
}

/* Powers the board off. PID 1 must never exit (the kernel would panic), so should the kernel fail
 * to power off, it waits forever. */
static void __attribute__((noreturn)) power_off(void) {
  sys_reboot(LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_POWER_OFF, 0);
  say("kv: the kernel could not power off", NULL);
  for (;;) sys_ppoll_forever(NULL, 0);
}

/* When something essential fails: say why, and power off. */
static void __attribute__((noreturn)) give_up(const char *what, long error) {
  char number[20];
  say("kv: ", what, ": ", errno_text(number, error), "; powering off", NULL);
  power_off();
}

/* Which clients the service remembers, and their answers (the exactly-once rule, as in kv.c). */
struct client {
  bool used;
  uint32_t address; /* network byte order: only compared */
  uint16_t port;
  uint32_t last_request;
  uint32_t next_slot;
  struct remembered_response history[CLIENT_HISTORY];
};

static struct client clients[CLIENTS_MAX];
static uint32_t request_counter;

/* The disk is opened O_DIRECT: a write reaches the device before the answer goes out, with no
 * flush, as kv.c's virtio writes do. O_DIRECT wants sector-aligned buffers. */
static int disk = -1;
static uint8_t disk_buffer[SLOTS_PER_REQUEST * SECTORS_PER_SLOT * SECTOR] __attribute__((aligned(SECTOR)));
static uint8_t slot_sectors[SECTORS_PER_SLOT * SECTOR] __attribute__((aligned(SECTOR)));
static uint8_t header_sector[SECTOR] __attribute__((aligned(SECTOR)));

/* Reads or writes whole sectors; true when all of them were transferred. */
static bool disk_read(uint32_t sector, void *buffer, uint32_t count, long *error) {
  long result = sys_pread64(disk, buffer, count * SECTOR, (uint64_t)sector * SECTOR);
  *error = result < 0 ? result : -EIO;
  return result == (long)(count * SECTOR);
}

static bool disk_write(uint32_t sector, const void *buffer, uint32_t count, long *error) {
  long result = sys_pwrite64(disk, buffer, count * SECTOR, (uint64_t)sector * SECTOR);
  *error = result < 0 ? result : -EIO;
  return result == (long)(count * SECTOR);
}

/* Writes what `slot_in_store` should become to its slot on disk (before RAM changes: write-through). */
static bool persist(const struct entry *slot_in_store, const struct entry *new_contents) {
  if (disk < 0) return true;
  uint32_t index = (uint32_t)(slot_in_store - store);
  static struct disk_slot slot;
  encode_slot(new_contents, &slot);
  memset(slot_sectors, 0, sizeof slot_sectors);
  memcpy(slot_sectors, &slot, sizeof slot);
  long error;
  return disk_write(1u + index * SECTORS_PER_SLOT, slot_sectors, SECTORS_PER_SLOT, &error);
}

/* ---- the disk: load or format ---- */

/* Gives up on the disk: the store stays in RAM only. */
static void forget_disk(const char *what, long error) {
  char number[20];
  say("kv: ", what, ": ", errno_text(number, error), "; serving from RAM only", NULL);
  sys_close(disk);
  disk = -1;
}

static void load_store(void) {
  uint32_t loaded = 0;
  uint32_t discarded = 0;
  for (uint32_t first = 0; first < STORE_SLOTS; first += SLOTS_PER_REQUEST) {
    uint32_t count = STORE_SLOTS - first < SLOTS_PER_REQUEST ? STORE_SLOTS - first : SLOTS_PER_REQUEST;
    long error;
    if (!disk_read(1u + first * SECTORS_PER_SLOT, disk_buffer, count * SECTORS_PER_SLOT, &error)) {
      memset(store, 0, sizeof store);
      forget_disk("cannot read the disk", error);
      return;
    }
    for (uint32_t i = 0; i < count; i++) {
      struct disk_slot slot;
      memcpy(&slot, disk_buffer + i * SECTORS_PER_SLOT * SECTOR, sizeof slot);
      if (decode_slot(&slot, &store[first + i])) loaded++;
      else if (slot.magic == SLOT_MAGIC && slot.used != 0) discarded++;
    }
  }
  char loaded_text[12];
  char discarded_text[12];
  if (discarded == 0) {
    say("kv: disk: loaded ", decimal(loaded_text, loaded), " keys", NULL);
  } else {
    say("kv: disk: loaded ", decimal(loaded_text, loaded), " keys (", decimal(discarded_text, discarded),
        " damaged slots discarded)", NULL);
  }
}

/* A new disk: clear the slot area, then write the header last and flush. */
static void format_store(void) {
  long error;
  memset(disk_buffer, 0, sizeof disk_buffer);
  for (uint32_t first = 0; first < STORE_SLOTS; first += SLOTS_PER_REQUEST) {
    uint32_t count = STORE_SLOTS - first < SLOTS_PER_REQUEST ? STORE_SLOTS - first : SLOTS_PER_REQUEST;
    if (!disk_write(1u + first * SECTORS_PER_SLOT, disk_buffer, count * SECTORS_PER_SLOT, &error)) {
      forget_disk("cannot format the disk", error);
      return;
    }
  }
  struct disk_header header;
  memset(&header, 0, sizeof header);
  memcpy(header.magic, "FTVMKV01", 8);
  header.version = DISK_VERSION;
  header.slot_count = STORE_SLOTS;
  header.sectors_per_slot = SECTORS_PER_SLOT;
  header.crc = crc32(&header, __builtin_offsetof(struct disk_header, crc));
  memset(header_sector, 0, sizeof header_sector);
  memcpy(header_sector, &header, sizeof header);
  if (!disk_write(0, header_sector, 1, &error)) {
    forget_disk("cannot format the disk", error);
    return;
  }
  long result = sys_fsync(disk);
  if (result < 0) {
    forget_disk("cannot format the disk", result);
    return;
  }
  say("kv: disk: formatted a new store", NULL);
}

static void open_disk(void) {
  long result = sys_open(DISK_PATH, O_RDWR | O_DIRECT, 0);
  if (result == -ENOENT) {
    say("kv: no disk; serving from RAM only", NULL);
    return;
  }
  if (result < 0) {
    char number[20];
    say("kv: cannot use the disk: ", errno_text(number, result), "; serving from RAM only", NULL);
    return;
  }
  disk = (int)result;
  uint64_t bytes = 0;
  int read_only = 0;
  if (sys_ioctl(disk, BLKGETSIZE64, &bytes) < 0 || sys_ioctl(disk, BLKROGET, &read_only) < 0 ||
      bytes / SECTOR < DISK_SECTORS_NEEDED || read_only != 0) {
    char sectors[12];
    say("kv: the disk must be writable and hold ", decimal(sectors, DISK_SECTORS_NEEDED),
        " sectors; serving from RAM only", NULL);
    sys_close(disk);
    disk = -1;
    return;
  }
  long error;
  if (!disk_read(0, header_sector, 1, &error)) {
    forget_disk("cannot read the disk", error);
    return;
  }
  struct disk_header header;
  memcpy(&header, header_sector, sizeof header);
  bool formatted = memcmp(header.magic, "FTVMKV01", 8) == 0 && header.version == DISK_VERSION &&
                   header.slot_count == STORE_SLOTS && header.sectors_per_slot == SECTORS_PER_SLOT &&
                   header.crc == crc32(&header, __builtin_offsetof(struct disk_header, crc));
  if (formatted) load_store();
  else format_store();
}

static struct client *client_for(const struct sockaddr_in *from) {
  struct client *victim = NULL;
  for (uint32_t i = 0; i < CLIENTS_MAX; i++) {
    struct client *client = &clients[i];
    if (client->used && client->address == from->sin_addr.s_addr && client->port == from->sin_port) return client;
    /* Prefer a free entry, else the least recently heard-from client. */
    if (victim == NULL || (victim->used && (!client->used || client->last_request < victim->last_request))) {
      victim = client;
    }
  }
  memset(victim, 0, sizeof *victim);
  victim->used = true;
  victim->address = from->sin_addr.s_addr;
  victim->port = from->sin_port;
  return victim;
}

static void send_response(int socket, const struct sockaddr_in *to, const char *text, uint32_t length, bool newline) {
  static char datagram[RESPONSE_BYTES_MAX + 2];
  memcpy(datagram, text, length);
  if (newline) datagram[length++] = '\n';
  sys_sendto(socket, datagram, length, 0, to, sizeof *to); /* a lost answer is the client's to retry */
}

static void handle_datagram(int socket, const struct sockaddr_in *from, const char *text, uint32_t length) {
  bool newline = false;
  if (length > 0 && text[length - 1] == '\n') {
    newline = true;
    length--;
    if (length > 0 && text[length - 1] == '\r') length--;
  }
  uint32_t id_length = 0;
  while (id_length < length && text[id_length] != ' ') id_length++;
  uint32_t id;
  if (!parse_id(text, id_length, &id)) return; /* no readable id: nobody to answer */
  struct client *client = client_for(from);
  client->last_request = ++request_counter;
  for (uint32_t i = 0; i < CLIENT_HISTORY; i++) {
    const struct remembered_response *remembered = &client->history[i];
    if (remembered->valid && remembered->id == id) {
      send_response(socket, from, remembered->text, remembered->length, newline);
      return;
    }
  }
  uint32_t response_length;
  if (length > REQUEST_BYTES_MAX) {
    response_length = error_response(id, "request too long");
  } else if (id_length == length) {
    response_length = error_response(id, "malformed request");
  } else {
    response_length = execute(id, text + id_length + 1, length - id_length - 1);
  }
  struct remembered_response *slot = &client->history[client->next_slot];
  client->next_slot = (client->next_slot + 1) % CLIENT_HISTORY;
  slot->valid = true;
  slot->id = id;
  slot->length = (uint16_t)response_length;
  memcpy(slot->text, response, response_length);
  send_response(socket, from, response, response_length, newline);
}

/* ---- the system ---- */

static void mount_or_warn(const char *type, const char *target) {
  long result = sys_mount(type, target, type, 0, NULL);
  if (result < 0 && result != -EBUSY) {
    char number[20];
    say("kv: cannot mount ", target, ": ", errno_text(number, result), NULL);
  }
}

static uint32_t ipv4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return __builtin_bswap32(a << 24 | b << 16 | c << 8 | d); /* to network byte order (the CPU is little-endian) */
}

static void set_ipv4(struct sockaddr *target, uint32_t address) {
  struct sockaddr_in in;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = address;
  memcpy(target, &in, sizeof *target);
}

/* Sets IFF_UP on an interface; `what` names the step for give_up(). */
static void interface_up(int fd, const char *name, const char *what) {
  struct ifreq request;
  memset(&request, 0, sizeof request);
  strlcpy(request.ifr_name, name, IFNAMSIZ);
  long result = sys_ioctl(fd, SIOCGIFFLAGS, &request);
  if (result >= 0) {
    request.ifr_flags |= IFF_UP;
    result = sys_ioctl(fd, SIOCSIFFLAGS, &request);
  }
  if (result < 0) give_up(what, result);
}

/* lo up; eth0 10.0.2.15/24; default route via 10.0.2.2 (QEMU's user network, and ftvm's). */
static void configure_network(void) {
  long fd = sys_socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) give_up("cannot open a socket", fd);
  interface_up((int)fd, "lo", "cannot bring up lo");

  struct ifreq request;
  memset(&request, 0, sizeof request);
  strlcpy(request.ifr_name, "eth0", IFNAMSIZ);
  set_ipv4(&request.ifr_addr, ipv4(10, 0, 2, 15));
  long result = sys_ioctl((int)fd, SIOCSIFADDR, &request);
  if (result < 0) give_up("cannot set eth0's address", result);
  set_ipv4(&request.ifr_netmask, ipv4(255, 255, 255, 0));
  result = sys_ioctl((int)fd, SIOCSIFNETMASK, &request);
  if (result < 0) give_up("cannot set eth0's netmask", result);
  interface_up((int)fd, "eth0", "cannot bring up eth0");

  struct rtentry route;
  memset(&route, 0, sizeof route);
  set_ipv4(&route.rt_dst, 0);
  set_ipv4(&route.rt_genmask, 0);
  set_ipv4(&route.rt_gateway, ipv4(10, 0, 2, 2));
  route.rt_flags = RTF_UP | RTF_GATEWAY;
  result = sys_ioctl((int)fd, SIOCADDRT, &route);
  if (result < 0) give_up("cannot add the default route", result);
  sys_close((int)fd);
}

static int listen_udp(uint16_t port) {
  long fd = sys_socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) give_up("cannot open a socket", fd);
  struct sockaddr_in address;
  memset(&address, 0, sizeof address);
  address.sin_family = AF_INET;
  address.sin_port = __builtin_bswap16(port);
  address.sin_addr.s_addr = 0; /* any */
  long result = sys_bind((int)fd, &address, sizeof address);
  if (result < 0) give_up("cannot listen on udp port 5555", result);
  return (int)fd;
}

enum console_input { CONSOLE_NOTHING, CONSOLE_POWER_OFF, CONSOLE_CLOSED };

/* The console (stdin: the serial line, in canonical mode, so a read is a line) takes one command. */
static enum console_input read_console(void) {
  static char line[64];
  long length = sys_read(0, line, sizeof line);
  if (length <= 0) return CONSOLE_CLOSED;
  while (length > 0 && (line[length - 1] == '\n' || line[length - 1] == '\r')) length--;
  if (length == 8 && memcmp(line, "poweroff", 8) == 0) return CONSOLE_POWER_OFF;
  if (length > 0) say("kv: the console takes one command: poweroff", NULL);
  return CONSOLE_NOTHING;
}

static void __attribute__((noreturn)) shut_down(void) {
  say("kv: powering off", NULL);
  if (disk >= 0) sys_fsync(disk); /* the writes are on the device already; this empties its cache */
  power_off();
}

int main(void) {
  mount_or_warn("devtmpfs", "/dev");
  mount_or_warn("proc", "/proc");
  mount_or_warn("sysfs", "/sys");
  crc_init();
  say("kv: starting", NULL);
  open_disk();
  configure_network();
  int socket = listen_udp(KV_PORT);
  char port[12];
  say("kv: ready: listening on udp port ", decimal(port, KV_PORT), disk >= 0 ? " (persistent)" : " (RAM only)",
      NULL);

  static char datagram[DATAGRAM_BYTES_MAX];
  struct pollfd waits[2] = {{.fd = socket, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    long ready = sys_ppoll_forever(waits, 2);
    if (ready < 0) continue; /* EINTR; nothing else is expected */
    if (waits[0].revents & POLLIN) {
      struct sockaddr_in from;
      uint32_t from_length = sizeof from;
      /* MSG_TRUNC: the datagram's whole length, also when it did not fit the buffer. */
      long length = sys_recvfrom(socket, datagram, sizeof datagram, MSG_TRUNC, &from, &from_length);
      if (length >= 0 && length <= (long)DATAGRAM_BYTES_MAX && from.sin_family == AF_INET) {
        handle_datagram(socket, &from, datagram, (uint32_t)length);
      }
    }
    if (waits[1].revents != 0) {
      enum console_input input = waits[1].revents & POLLIN ? read_console() : CONSOLE_CLOSED;
      if (input == CONSOLE_POWER_OFF) shut_down();
      if (input == CONSOLE_CLOSED) waits[1].fd = -1; /* no console input to wait for */
    }
  }
}
