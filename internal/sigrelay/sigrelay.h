int berth_sigrelay_install(int fd, const int *sigs, int n);
void berth_sigrelay_restore(const int *sigs, int n);
