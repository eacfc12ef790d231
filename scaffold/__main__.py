from scaffold._cli import main

main()
