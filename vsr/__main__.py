from vsr.launch import main

main()
