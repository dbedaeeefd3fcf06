/* An illegal instruction with no handler: the SDK reports it and powers off with status 127. */
#include <stdio.h>

int main(void) {
  printf("about to execute an illegal instruction\n");
  __asm__ volatile(".word 0" ::: "memory");
  printf("not reached\n");
  return 0;
}
